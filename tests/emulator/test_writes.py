"""Changing a space through the API: create, update (version + 1 or 409), trash, purge,
restore, move, labels; and that CQL sees every change."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from confluence_rag.emulator import EmulatorServer
from tests.emulator.helpers import client
from tests.plugins.emulator import EmulatorFactory

LATER = datetime(2026, 1, 10, 9, 30, 15, tzinfo=UTC)


def search_ids(http: httpx.Client, cql: str) -> set[str]:
    body = http.get("/rest/api/content/search", params={"cql": cql, "limit": 1000}).json()
    assert "next" not in body["_links"]
    return {item["id"] for item in body["results"]}


def put(http: httpx.Client, content_id: str, version: int, **fields: object) -> httpx.Response:
    current = http.get(f"/rest/api/content/{content_id}", params={"status": "any"}).json()
    payload = {"type": current["type"], "title": current["title"], "version": {"number": version}}
    payload.update(fields)
    return http.put(f"/rest/api/content/{content_id}", json=payload)


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_create_update_and_find_by_lastmodified(
    emulator_factory: EmulatorFactory, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=10)
    state = server.state
    home = state.space("DEMO").homepage_id
    state.set_now(LATER)
    with client(server) as http:
        created = http.post(
            "/rest/api/content",
            json={"type": "page", "title": "Fresh page", "space": {"key": "DEMO"},
                  "ancestors": [{"id": home}],
                  "body": {"storage": {"value": "<p>hello</p>", "representation": "storage"}}},
        )  # fmt: skip
        assert created.status_code == 200, created.text
        page = created.json()
        assert page["version"]["number"] == 1
        assert [a["id"] for a in page["ancestors"]] == [home]
        assert page["body"]["storage"]["value"] == "<p>hello</p>"
        assert page["space"]["key"] == "DEMO"

        # generated pages are all older than LATER: only the new page is that recent
        assert search_ids(http, 'space = DEMO and lastmodified >= "2026-01-10 09:30"') == {
            page["id"]
        }

        other = sorted(state.current_ids("DEMO") - {page["id"], home})[0]
        before = http.get(f"/rest/api/content/{other}", params={"expand": "version"}).json()
        state.advance(3600)
        new_body = {"storage": {"value": "<p>changed</p>", "representation": "storage"}}
        updated = put(http, other, before["version"]["number"] + 1, body=new_body)
        assert updated.status_code == 200, updated.text
        expand = {"expand": "version,body.storage,history.lastUpdated"}
        after = http.get(f"/rest/api/content/{other}", params=expand).json()
        assert after["version"]["number"] == before["version"]["number"] + 1
        assert after["body"]["storage"]["value"] == "<p>changed</p>"
        assert after["history"]["lastUpdated"]["number"] == after["version"]["number"]
        moment = after["version"]["when"]
        assert moment.startswith("2026-01-10T10:30:15.000" if flavour == "cloud" else "2026-01-10T")
        assert search_ids(http, 'space = DEMO and lastmodified >= "2026-01-10 10:30"') == {other}


def test_update_needs_the_next_version(cloud_emulator: EmulatorServer) -> None:
    page_id = sorted(cloud_emulator.state.current_ids("DEMO"))[1]
    version = cloud_emulator.state.content(page_id).version
    with client(cloud_emulator) as http:
        for wrong in (version, version + 2):
            response = put(http, page_id, wrong, title="New title")
            assert response.status_code == 409
            assert response.json()["message"].endswith(f"Current version is: {version}")
        missing = http.put(f"/rest/api/content/{page_id}", json={"title": "x", "type": "page"})
        assert missing.status_code == 400
        assert put(http, page_id, version + 1, title="New title").status_code == 200
    assert cloud_emulator.state.content(page_id).title == "New title"


def test_trash_purge_and_restore(dc_emulator: EmulatorServer) -> None:
    state = dc_emulator.state
    ids = sorted(state.current_ids("DEMO", "page"))
    with client(dc_emulator) as http:
        victim, survivor = ids[2], ids[3]
        assert http.delete(f"/rest/api/content/{victim}").status_code == 204
        assert http.get(f"/rest/api/content/{victim}").status_code == 404
        trashed = http.get(f"/rest/api/content/{victim}", params={"status": "trashed"}).json()
        assert trashed["status"] == "trashed"
        assert victim not in search_ids(http, "space = DEMO")
        assert victim in search_ids(http, "space = DEMO and status = trashed")
        assert http.delete(f"/rest/api/content/{victim}").status_code == 404  # already trashed

        # restore: an update to status current with the next version, as Confluence does
        restored = put(http, victim, trashed["version"]["number"] + 1, status="current")
        assert restored.status_code == 200, restored.text
        assert victim in search_ids(http, "space = DEMO")

        # purge needs the trash first
        purge = http.delete(f"/rest/api/content/{survivor}", params={"status": "trashed"})
        assert purge.status_code == 404
        assert http.delete(f"/rest/api/content/{survivor}").status_code == 204
        assert (
            http.delete(f"/rest/api/content/{survivor}", params={"status": "trashed"}).status_code
            == 204
        )
        for status in ("current", "trashed", "any"):
            gone = http.get(f"/rest/api/content/{survivor}", params={"status": status})
            assert gone.status_code == 404
        assert survivor not in search_ids(http, "space = DEMO and status in (current, trashed)")


def test_trashing_a_parent_lifts_its_children(cloud_emulator: EmulatorServer) -> None:
    state = cloud_emulator.state
    home = state.space("DEMO").homepage_id
    assert home is not None
    parent = state.add_page("Parent", parent_id=home)
    child = state.add_page("Child", parent_id=parent.id)
    state.trash(parent.id)
    assert state.ancestor_ids(state.content(child.id)) == [home]
    state.restore(parent.id)
    assert state.content(parent.id).parent_id == home


def test_move_to_another_space(cloud_emulator: EmulatorServer) -> None:
    state = cloud_emulator.state
    parent = state.add_page("Moving parent")
    child = state.add_page("Moving child", parent_id=parent.id)
    with client(cloud_emulator) as http:
        moved = put(http, parent.id, parent.version + 1, space={"key": "OPS"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["space"]["key"] == "OPS"
        assert {parent.id, child.id} <= search_ids(http, "space = OPS")
        assert not {parent.id, child.id} & search_ids(http, "space = DEMO")
    # the state helper moves without a new version, as Confluence's move does
    version = state.content(parent.id).version
    state.move(parent.id, "DEMO")
    assert state.content(child.id).space_key == "DEMO"
    assert state.content(parent.id).version == version


def test_bad_writes_are_refused(cloud_emulator: EmulatorServer) -> None:
    existing = cloud_emulator.state.content(sorted(cloud_emulator.state.current_ids("DEMO"))[0])
    with client(cloud_emulator) as http:

        def post(payload: object) -> httpx.Response:
            return http.post("/rest/api/content", json=payload)

        duplicate = post({"type": "page", "title": existing.title, "space": {"key": "DEMO"}})
        assert duplicate.status_code == 400 and "already exists" in duplicate.json()["message"]
        assert post({"type": "page", "title": "No space"}).status_code == 400
        assert post({"type": "page", "space": {"key": "DEMO"}}).status_code == 400
        assert post({"type": "comment", "title": "x", "space": {"key": "DEMO"}}).status_code == 400
        assert post({"type": "page", "title": "x", "space": {"key": "NOPE"}}).status_code == 404
        assert post(["not", "an", "object"]).status_code == 400
        bad_json = http.post("/rest/api/content", content=b"{nope",
                             headers={"Content-Type": "application/json"})  # fmt: skip
        assert bad_json.status_code == 400
    with client(cloud_emulator, restricted=True) as http:
        payload = {"type": "page", "title": "x", "space": {"key": "DEMO"}}
        forbidden = http.post("/rest/api/content", json=payload)
        assert forbidden.status_code == 403


def test_labels_read_and_add(cloud_emulator: EmulatorServer) -> None:
    page_id = sorted(cloud_emulator.state.current_ids("DEMO"))[0]
    with client(cloud_emulator) as http:
        added = http.post(f"/rest/api/content/{page_id}/label",
                          json=[{"prefix": "global", "name": "fresh-label"}])  # fmt: skip
        assert added.status_code == 200
        names = [
            label["name"]
            for label in http.get(f"/rest/api/content/{page_id}/label").json()["results"]
        ]
        assert "fresh-label" in names
        assert page_id in search_ids(http, "label = fresh-label")
