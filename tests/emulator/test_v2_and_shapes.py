"""v2 cursor walks, and the v1 shapes clients read: content objects against a real recorded
response, spaces, children, attachments with downloadable bytes, labels."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from confluence_rag.emulator import EmulatorServer, LimitCaps
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory


@pytest.mark.parametrize("limit", [1, 7, 250])
def test_v2_walk_by_cursor_and_link_header(emulator_factory: EmulatorFactory, limit: int) -> None:
    server = emulator_factory("cloud", pages=60)
    expected = server.state.current_ids("DEMO", "page")
    headers = server.auth_headers()
    with httpx.Client(base_url=server.site_url, headers=headers) as http:
        spaces = http.get("/wiki/api/v2/spaces", params={"keys": "DEMO"}).json()
        (space,) = spaces["results"]
        assert space["key"] == "DEMO" and space["homepageId"] in expected
        url = f"/wiki/api/v2/spaces/{space['id']}/pages"
        response = http.get(
            url, params={"body-format": "storage", "limit": limit, "status": "current"}
        )
        seen: list[str] = []
        while True:
            assert response.status_code == 200, response.text
            body = response.json()
            assert len(body["results"]) <= limit
            seen += [page["id"] for page in body["results"]]
            assert all(
                page["body"]["storage"]["representation"] == "storage" for page in body["results"]
            )
            next_link = body["_links"].get("next")
            if not next_link:
                assert "Link" not in response.headers
                break
            # v2 links are relative to the site and carry the cursor and every parameter
            assert next_link.startswith("/wiki/api/v2/")
            assert response.headers["Link"] == f'<{next_link}>; rel="next"'
            query = parse_qs(urlsplit(next_link).query)
            assert (
                query["body-format"] == ["storage"] and "cursor" in query and "start" not in query
            )
            response = http.get(next_link)
    assert len(seen) == len(set(seen)) and set(seen) == expected


def test_v2_limits_and_single_page(cloud_emulator: EmulatorServer) -> None:
    page_id = cloud_emulator.state.space("DEMO").homepage_id
    with httpx.Client(
        base_url=cloud_emulator.api_base, headers=cloud_emulator.auth_headers()
    ) as http:
        space_id = http.get("/api/v2/spaces", params={"keys": "DEMO"}).json()["results"][0]["id"]
        assert (
            http.get(f"/api/v2/spaces/{space_id}/pages", params={"limit": 251}).status_code == 400
        )
        assert (
            http.get(f"/api/v2/spaces/{space_id}/pages", params={"cursor": "garbage!"}).status_code
            == 400
        )
        page = http.get(f"/api/v2/pages/{page_id}", params={"body-format": "storage"}).json()
        assert page["id"] == page_id and page["spaceId"] == space_id
        assert page["version"]["number"] >= 1 and page["body"]["storage"]["value"]
        assert http.get(f"/api/v2/pages/{page_id}").json()["body"] == {}


def keys_of(value: object, prefix: str = "") -> set[str]:
    """Dotted key paths of a JSON value (list items under "[]")."""
    out: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            out.add(path)
            out |= keys_of(item, path)
    elif isinstance(value, list) and value:
        out |= keys_of(value[0], prefix + "[]")
    return out


def test_content_shape_matches_a_recorded_cloud_page(
    cloud_emulator: EmulatorServer, shared_data: Path
) -> None:
    recorded = json.loads(
        (
            shared_data / "confluence/api_responses/airbyte/page_98487_overview_expanded.json"
        ).read_text()
    )
    page_id = sorted(cloud_emulator.state.current_ids("DEMO"))[3]
    with client(cloud_emulator) as http:
        ours = http.get(
            f"/rest/api/content/{page_id}",
            params={"expand": "history.lastUpdated,version,body.storage"},
        ).json()
    wanted = {
        key
        for key in keys_of(recorded)
        if key.split(".")[0]
        in ("id", "type", "status", "title", "history", "version", "body", "_links")
        and not key.startswith(
            ("body.view", "history.contributors", "body.storage.embeddedContent[")
        )
        and ".profilePicture" not in key
    }
    missing = wanted - keys_of(ours)
    assert not missing, sorted(missing)
    assert ours["_links"]["webui"].startswith(f"/spaces/DEMO/pages/{page_id}/")
    assert ours["_links"]["tinyui"].startswith("/x/")
    assert ours["version"]["when"].endswith("Z")
    assert "ancestors" in ours["_expandable"] and "space" in ours["_expandable"]


def test_datacenter_users_and_times(dc_emulator: EmulatorServer) -> None:
    page_id = dc_emulator.state.space("DEMO").homepage_id
    with client(dc_emulator) as http:
        page = http.get(f"/rest/api/content/{page_id}").json()  # default expand
    assert {"space", "history", "version"} <= set(page)
    author = page["version"]["by"]
    assert author["username"] and author["userKey"] and "accountId" not in author
    assert page["version"]["when"][-6] in "+-"  # an offset, not Z
    assert page["_links"]["webui"].startswith("/display/DEMO/")


def test_ancestors_labels_children_attachments(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=200, caps=LimitCaps.uniform(1000))
    state = server.state
    with_files = next(
        c for c in sorted(state.contents.values(), key=lambda c: int(c.id))
        if c.status == "current" and c.parent_id and state.attachments_of(c.id) and c.labels
    )  # fmt: skip
    with client(server) as http:
        page = http.get(
            f"/rest/api/content/{with_files.id}",
            params={"expand": "ancestors,metadata.labels,children.attachment,space"},
        ).json()
        assert [a["id"] for a in page["ancestors"]] == state.ancestor_ids(with_files)
        assert page["ancestors"][-1]["id"] == with_files.parent_id
        labels = [label["name"] for label in page["metadata"]["labels"]["results"]]
        assert labels == with_files.labels
        files = http.get(f"/rest/api/content/{with_files.id}/child/attachment").json()["results"]
        assert {f["title"] for f in files} == {a.title for a in state.attachments_of(with_files.id)}
        for item in files:
            data = http.get(
                page["_links"]["self"].split("/rest/api")[0] + item["_links"]["download"]
            )
            assert data.status_code == 200
            assert len(data.content) == item["extensions"]["fileSize"] > 0
            again = http.get(
                f"/rest/api/content/{with_files.id}/child/attachment/{item['id']}/download"
            )
            assert again.content == data.content
        home = state.space("DEMO").homepage_id
        children = http.get(f"/rest/api/content/{home}/child/page", params={"limit": 5}).json()
        assert children["size"] == 5 and "next" in children["_links"]
        assert all(state.content(c["id"]).parent_id == home for c in children["results"])
        assert http.get(f"/rest/api/content/{with_files.id}/child/unknown").status_code == 400
