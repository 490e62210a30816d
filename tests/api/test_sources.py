"""Sources over HTTP against a real emulator: add (credentials checked first), list, show, change,
sync (409 while a job runs), delete; secrets never in a response."""

from __future__ import annotations

import socket
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_PAT,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
)
from tests.api.conftest import source_body, wait_for_job
from tests.api.test_errors import assert_error
from tests.plugins.emulator import EmulatorFactory


def test_add_crawl_list_show_and_delete_a_source(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=12)
    seen: list[httpx.Response] = []

    def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = client.request(method, url, **kwargs)
        seen.append(response)
        return response

    created = call("POST", "/api/confluence/sources", json=source_body(server, tags=["demo"]))
    assert created.status_code == 201, created.text
    body = created.json()
    assert set(body) == {"source_id", "progress_id", "status"}
    assert body["status"] in ("queued", "running")
    source_id = body["source_id"]
    assert source_id.endswith(":DEMO")

    job = wait_for_job(client, body["progress_id"])
    assert job["status"] == "completed", job
    assert job["kind"] == "crawl" and job["source_id"] == source_id
    assert job["percent"] == 100
    assert job["counters"]["pages_processed"] > 0

    listing = call("GET", "/api/confluence/sources").json()
    assert listing["count"] == 1
    (item,) = listing["sources"]
    assert item["source_id"] == source_id
    assert item["spaces"] == ["DEMO"]
    assert item["title"] and item["site"].startswith(server.site_url)
    assert item["tags"] == ["demo"]
    assert item["sync_status"] == "active" and item["sync_error"] is None
    assert item["status"] == "active" and item["progress_id"] is None
    assert item["last_sync_at"] is not None
    assert item["total_pages"] == job["counters"]["pages_processed"]
    assert item["total_chunks"] >= item["total_pages"]
    last = datetime.fromisoformat(item["last_sync_at"])
    expected_next = last + timedelta(hours=item["sync_frequency_hours"])
    assert datetime.fromisoformat(item["next_sync_at"]) == expected_next

    shown = call("GET", f"/api/confluence/sources/{source_id}")
    assert shown.status_code == 200 and shown.json() == item

    deleted = call("DELETE", f"/api/confluence/sources/{source_id}")
    assert deleted.status_code == 200 and deleted.json() == {
        "source_id": source_id,
        "deleted": True,
    }
    assert_error(call("GET", f"/api/confluence/sources/{source_id}"), 404, "source_not_found")
    assert call("GET", "/api/confluence/sources").json() == {"sources": [], "count": 0}

    for response in seen:
        assert DEMO_API_TOKEN not in response.text
        assert "api_token" not in response.text


def test_several_spaces_in_one_source(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=5, extra_spaces={"OPS": 3})
    body = source_body(server, space_key=None, space_keys=["DEMO", "OPS"])
    created = client.post("/api/confluence/sources", json=body)
    assert created.status_code == 201, created.text
    assert wait_for_job(client, created.json()["progress_id"])["status"] == "completed"
    item = client.get(f"/api/confluence/sources/{created.json()['source_id']}").json()
    assert item["spaces"] == ["DEMO", "OPS"]
    assert set(item["space_names"]) == {"DEMO", "OPS"}


def test_data_center_source_with_a_personal_access_token(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("datacenter", pages=5)
    body = {
        "confluence_url": server.site_url,
        "api_token": DEMO_PAT,
        "space_key": "DEMO",
        "flavour": "datacenter",
    }
    created = client.post("/api/confluence/sources", json=body)
    assert created.status_code == 201, created.text
    assert wait_for_job(client, created.json()["progress_id"])["status"] == "completed"
    item = client.get(f"/api/confluence/sources/{created.json()['source_id']}").json()
    assert item["flavour"] == "datacenter"
    assert DEMO_PAT not in str(item)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("overrides", "status", "code", "needle"),
    [
        ({"api_token": "wrong-token"}, 401, "authentication_failed", ""),
        ({"space_key": "NOPE"}, 404, "space_not_found", "NOPE"),
        (
            {"user_email": RESTRICTED_EMAIL, "api_token": RESTRICTED_API_TOKEN},
            403,
            "space_access_denied",
            "DEMO",
        ),
        ({"confluence_url": "not a url"}, 400, "invalid_site_url", ""),
        ({"confluence_url": "ftp://example.com"}, 400, "invalid_site_url", ""),
        ({"space_key": "bad key!"}, 400, "invalid_input", "space key"),
        ({"user_email": None}, 400, "invalid_input", "user_email"),
        ({"space_key": None}, 400, "invalid_input", "space"),
    ],
)
def test_add_errors_are_clear_and_save_nothing(
    client: httpx.Client,
    emulator_factory: EmulatorFactory,
    overrides: dict[str, Any],
    status: int,
    code: str,
    needle: str,
) -> None:
    server = emulator_factory("cloud", pages=3)
    body = source_body(server, flavour="cloud", **overrides)
    response = client.post("/api/confluence/sources", json=body)
    error = assert_error(response, status, code)
    assert needle in error["message"]
    assert body["api_token"] not in response.text
    assert client.get("/api/confluence/sources").json()["count"] == 0
    assert client.get("/api/progress").json()["count"] == 0


def test_unreachable_site_is_a_502(client: httpx.Client) -> None:
    body = {
        "confluence_url": f"http://127.0.0.1:{_closed_port()}",
        "user_email": "me@example.com",
        "api_token": "tok-unreachable",
        "space_key": "DEV",
        "flavour": "cloud",
    }
    response = client.post("/api/confluence/sources", json=body)
    assert_error(response, 502, "confluence_unreachable")
    assert "tok-unreachable" not in response.text
    assert client.get("/api/confluence/sources").json()["count"] == 0


def test_a_validation_error_never_echoes_the_token(client: httpx.Client) -> None:
    body = {"confluence_url": "https://x.atlassian.net", "api_token": "tok-123456", "oops": 1}
    response = client.post("/api/confluence/sources", json=body)
    error = assert_error(response, 400, "invalid_request")
    assert "tok-123456" not in response.text
    assert {item["field"] for item in error["details"]["errors"]} == {"body.oops"}


def test_adding_the_same_source_twice_is_a_409(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    first = client.post("/api/confluence/sources", json=source_body(server, start_crawl=False))
    assert first.status_code == 201 and first.json()["progress_id"] is None
    again = client.post("/api/confluence/sources", json=source_body(server))
    error = assert_error(again, 409, "conflict")
    assert error["details"]["source_id"] == first.json()["source_id"]


def test_sync_twice_is_a_409_carrying_the_running_job(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=8)
    created = client.post("/api/confluence/sources", json=source_body(server, start_crawl=False))
    source_id = created.json()["source_id"]
    first = client.post(f"/api/confluence/sources/{source_id}/sync")
    assert first.status_code == 202, first.text
    progress_id = first.json()["progress_id"]
    second = client.post(f"/api/confluence/sources/{source_id}/sync")
    error = assert_error(second, 409, "job_already_running")
    assert error["details"]["progress_id"] == progress_id
    # While it runs the source says so and points at the job.
    item = client.get(f"/api/confluence/sources/{source_id}").json()
    if item["progress_id"] is not None:
        assert item["progress_id"] == progress_id
        assert item["status"] in ("queued", "syncing")
    assert wait_for_job(client, progress_id)["status"] == "completed"
    third = client.post(f"/api/confluence/sources/{source_id}/sync")
    assert third.status_code == 202 and third.json()["progress_id"] != progress_id
    wait_for_job(client, third.json()["progress_id"])


def test_patch_pauses_and_changes_the_sync_period(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    created = client.post("/api/confluence/sources", json=source_body(server, start_crawl=False))
    source_id = created.json()["source_id"]
    url = f"/api/confluence/sources/{source_id}"

    changed = client.patch(url, json={"sync_frequency_hours": 6})
    assert changed.status_code == 200, changed.text
    assert changed.json()["sync_frequency_hours"] == 6 and changed.json()["paused"] is False

    paused = client.patch(url, json={"paused": True}).json()
    assert paused["paused"] is True and paused["status"] == "paused"
    assert paused["sync_status"] == "paused" and paused["next_sync_at"] is None
    assert client.get(url).json()["paused"] is True

    resumed = client.patch(url, json={"paused": False}).json()
    assert resumed["paused"] is False and resumed["sync_status"] == "active"

    assert_error(client.patch(url, json={"sync_frequency_hours": -1}), 400, "invalid_request")
    assert_error(client.patch(url, json={"site_url": "http://evil"}), 400, "invalid_request")
    assert_error(
        client.patch("/api/confluence/sources/nope:X", json={"paused": True}),
        404,
        "source_not_found",
    )
