"""A real third-party client agrees with the Cloud-flavoured emulator: atlassian-python-api 4.0.7
(requests-based) reads spaces, pages, CQL results, children, attachments and labels.

Its Cloud mode adds ``/wiki`` only to ``*.atlassian.net`` URLs, so on 127.0.0.1 it is given the
API base (site URL + ``/wiki``), exactly what a user of that library types for a Cloud site.
"""

from __future__ import annotations

import pytest
from atlassian import Confluence

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer
from tests.plugins.emulator import EmulatorFactory


@pytest.fixture
def site(emulator_factory: EmulatorFactory) -> EmulatorServer:
    return emulator_factory("cloud", pages=120, seed=4)


@pytest.fixture
def confluence(site: EmulatorServer) -> Confluence:
    return Confluence(url=site.api_base, username=DEMO_EMAIL, password=DEMO_API_TOKEN, cloud=True)


def test_get_space(confluence: Confluence, site: EmulatorServer) -> None:
    space = confluence.get_space("DEMO")
    assert space["key"] == "DEMO" and space["name"] == "Demo Space"
    assert space["homepage"]["id"] == site.state.space("DEMO").homepage_id
    assert space["description"]["plain"]["value"].startswith("Generated sample space")


def test_get_page_by_id(confluence: Confluence, site: EmulatorServer) -> None:
    record = next(
        c
        for c in site.state.contents.values()
        if c.parent_id and c.labels and c.status == "current"
    )
    page = confluence.get_page_by_id(
        record.id, expand="body.storage,version,ancestors,metadata.labels,space"
    )
    assert page["title"] == record.title
    assert page["body"]["storage"]["value"] == record.body
    assert page["version"]["number"] == record.version
    assert page["ancestors"][-1]["id"] == record.parent_id
    assert [label["name"] for label in page["metadata"]["labels"]["results"]] == record.labels


def test_cql(confluence: Confluence, site: EmulatorServer) -> None:
    marker_id, marker = sorted(site.state.markers("DEMO").items())[5]
    found = confluence.cql(f'space = DEMO and text ~ "{marker}"', limit=10)
    assert [r["content"]["id"] for r in found["results"]] == [marker_id]
    assert found["totalSize"] == 1
    everything = confluence.cql("space = DEMO and type = page", limit=1000)
    assert everything["totalSize"] == len(site.state.current_ids("DEMO", "page"))


def test_get_page_child_by_type_follows_next(confluence: Confluence, site: EmulatorServer) -> None:
    home = site.state.space("DEMO").homepage_id
    assert home is not None
    for number in range(20):
        site.state.add_page(f"Extra child {number}", parent_id=home)
    expected = [c.id for c in site.state.children(home)]
    assert len(expected) > 25  # more than one page of results: the library must follow next
    children = list(confluence.get_page_child_by_type(home, type="page"))
    assert [c["id"] for c in children] == expected


def test_get_attachments_from_content(confluence: Confluence, site: EmulatorServer) -> None:
    record = next(
        c
        for c in site.state.contents.values()
        if site.state.attachments_of(c.id) and c.status == "current"
    )
    listing = confluence.get_attachments_from_content(record.id)
    names = {a["title"] for a in listing["results"]}
    assert names == {a.title for a in site.state.attachments_of(record.id)}
    first = listing["results"][0]
    data = confluence.get(first["_links"]["download"], not_json_response=True)
    assert data == next(
        a.data for a in site.state.attachments_of(record.id) if a.title == first["title"]
    )


def test_get_page_labels(confluence: Confluence, site: EmulatorServer) -> None:
    record = next(
        c for c in site.state.contents.values() if len(c.labels) >= 2 and c.status == "current"
    )
    labels = confluence.get_page_labels(record.id)
    assert [label["name"] for label in labels["results"]] == record.labels


def test_errors_surface_through_the_library(site: EmulatorServer) -> None:
    wrong = Confluence(url=site.api_base, username=DEMO_EMAIL, password="nope", cloud=True)
    with pytest.raises(Exception, match="401|authenticated"):
        wrong.get_space("DEMO")
