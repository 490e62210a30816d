"""Walking a space by following ``_links.next`` yields every page exactly once, for every space
size, silent cap and flavour; caps are silent; links carry expand and cql."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from confluence_rag.emulator import EmulatorConfig, EmulatorServer, LimitCaps
from tests.emulator.helpers import client, walk
from tests.plugins.emulator import EmulatorFactory

SIZES = (0, 1, 25, 26, 1000)
CAPS = (25, 50, 200, 1000)
FULL_EXPAND = "body.storage,version,ancestors,metadata.labels,space,history"


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[tuple[str, int], EmulatorServer]]:
    """One server per flavour and size, shared by the module (generating 1,000 pages twice is
    enough); each test sets the caps it needs."""
    started: dict[tuple[str, int], EmulatorServer] = {}
    for flavour in ("cloud", "datacenter"):
        for size in SIZES:
            config = EmulatorConfig(flavour=flavour, pages=size, seed=7, extra_spaces={"OPS": 5})
            started[(flavour, size)] = EmulatorServer(config).start()
    yield started
    for server in started.values():
        server.stop()


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("cap", CAPS)
def test_walk_yields_every_page_once(
    servers: dict[tuple[str, int], EmulatorServer], flavour: str, size: int, cap: int
) -> None:
    server = servers[(flavour, size)]
    server.state.set_limit_caps(LimitCaps.uniform(cap))
    try:
        expected = server.state.current_ids("DEMO")
        for expand in (FULL_EXPAND, ""):
            with client(server) as http:
                params = {"cql": "space = DEMO", "limit": 1000}
                if expand:
                    params["expand"] = expand
                bodies = list(walk(http, "/rest/api/content/search", params))
            ids = [item["id"] for body in bodies for item in body["results"]]
            assert len(ids) == len(set(ids)), "a page came twice"
            assert set(ids) == expected
            assert all(body["size"] <= cap and body["limit"] == cap for body in bodies)
            # the space is never listed in one go when it is larger than the cap
            assert len(bodies) == max(1, -(-len(expected) // cap))
            if expand and bodies[0]["results"]:
                first = bodies[0]["results"][0]
                assert first["body"]["storage"]["representation"] == "storage"
                assert "version" in first and "ancestors" in first and "history" in first
    finally:
        server.state.set_limit_caps(None)


@pytest.mark.parametrize(
    ("flavour", "expand", "cap"),
    [
        ("datacenter", "body.storage", 50),
        ("datacenter", "version,space", 200),
        ("datacenter", "", 1000),
        ("cloud", "body.storage,version", 25),
        ("cloud", "version", 100),
        ("cloud", "", 250),
    ],
)
def test_default_caps_are_silent(
    servers: dict[tuple[str, int], EmulatorServer], flavour: str, expand: str, cap: int
) -> None:
    server = servers[(flavour, 1000)]
    with client(server) as http:
        params = {"cql": "space = DEMO", "limit": 5000, "expand": expand}
        body = http.get("/rest/api/content/search", params=params).json()
    total = len(server.state.current_ids("DEMO"))
    assert body["limit"] == cap and body["size"] == min(cap, total)
    assert ("next" in body["_links"]) == (total > cap)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_next_link_carries_expand_cql_and_paging(
    servers: dict[tuple[str, int], EmulatorServer], flavour: str
) -> None:
    server = servers[(flavour, 1000)]
    with client(server) as http:
        params = {"cql": "space = DEMO order by title", "limit": 30, "expand": "version,space"}
        body = http.get("/rest/api/content/search", params=params).json()
    link = urlsplit(body["_links"]["next"])
    query = parse_qs(link.query)
    assert link.path == "/rest/api/content/search"
    assert query["expand"] == ["version,space"]
    assert query["cql"] == ["space = DEMO order by title"]
    assert query["limit"] == ["30"]
    if flavour == "cloud":
        assert "cursor" in query  # Cloud search pages by opaque cursor
        assert body["_links"]["base"].endswith("/wiki") and body["_links"]["context"] == "/wiki"
    else:
        assert query["start"] == ["30"] and "cursor" not in query
        assert body["_links"]["context"] == ""


def test_cloud_cursor_survives_an_edit_mid_walk(emulator_factory: EmulatorFactory) -> None:
    """A page edited between two requests neither repeats nor hides the rest (search-after)."""
    server = emulator_factory("cloud", pages=60, caps=LimitCaps.uniform(20))
    expected = server.state.current_ids("DEMO")
    seen: list[str] = []
    with client(server) as http:
        for number, body in enumerate(
            walk(http, "/rest/api/content/search", {"cql": "space = DEMO"})
        ):
            seen += [item["id"] for item in body["results"]]
            if number == 0:
                server.state.trash(seen[0])  # the walk's first item disappears behind it
    assert len(seen) == len(set(seen))
    assert set(seen) == expected


def test_cloud_rejects_deep_offsets(emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=1)
    with client(server) as http:
        response = http.get("/rest/api/content", params={"start": 15001})
        assert response.status_code == 400
        assert response.json()["statusCode"] == 400
        assert http.get("/rest/api/content", params={"start": 15000}).status_code == 200


def test_content_listing_and_spaces_page_by_start(dc_emulator: EmulatorServer) -> None:
    expected = dc_emulator.state.current_ids("DEMO", "page")
    with client(dc_emulator) as http:
        bodies = list(walk(http, "/rest/api/content", {"spaceKey": "DEMO", "limit": 7}))
        ids = [item["id"] for body in bodies for item in body["results"]]
        assert sorted(ids) == sorted(expected)
        spaces = list(walk(http, "/rest/api/space", {"limit": 1}))
        assert [s["results"][0]["key"] for s in spaces] == ["DEMO", "OPS"]
