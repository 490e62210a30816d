"""Progress over HTTP: polling with ETag / 304, server-sent events, cancel, active jobs."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from confluence_rag.emulator import LimitCaps
from tests.api.conftest import source_body, wait_for_job
from tests.api.test_errors import assert_error
from tests.plugins.emulator import EmulatorFactory

SLOW_PAGES = 80


def _slow_source(client: httpx.Client, emulator_factory: EmulatorFactory) -> dict[str, Any]:
    """A source whose crawl takes seconds: one page per request, 100 ms per request."""
    server = emulator_factory("cloud", pages=SLOW_PAGES, latency_ms=100, caps=LimitCaps.uniform(1))
    created = client.post("/api/confluence/sources", json=source_body(server))
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_polling_with_etag_gets_304_until_something_changes(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=5)
    created = client.post("/api/confluence/sources", json=source_body(server)).json()
    url = f"/api/progress/{created['progress_id']}"
    final = wait_for_job(client, created["progress_id"])

    first = client.get(url)
    assert first.status_code == 200 and first.json() == final
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert int(first.headers["x-poll-interval"]) >= 1

    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag and "x-poll-interval" in again.headers
    assert client.get(url, headers={"If-None-Match": f"W/{etag}"}).status_code == 304
    stale = client.get(url, headers={"If-None-Match": '"something-else"'})
    assert stale.status_code == 200 and stale.json() == final


def test_etag_changes_while_a_job_moves(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    created = _slow_source(client, emulator_factory)
    url = f"/api/progress/{created['progress_id']}"
    first = client.get(url)
    assert first.headers["x-poll-interval"] == "1"
    etags = {first.headers["etag"]}
    deadline = time.monotonic() + 20
    while len(etags) < 3 and time.monotonic() < deadline:
        response = client.get(url, headers={"If-None-Match": first.headers["etag"]})
        if response.status_code == 200:
            etags.add(response.headers["etag"])
        time.sleep(0.2)
    assert len(etags) >= 3, "the job's ETag never changed"
    client.post(f"{url}/cancel")
    wait_for_job(client, created["progress_id"])


def _read_events(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event:"):
            name = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data += line.removeprefix("data:").strip()
        elif line == "" and data:
            events.append((name, json.loads(data)))
            name, data = "message", ""
    return events


def test_event_stream_yields_each_change_and_ends_with_the_job(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=25, latency_ms=20, caps=LimitCaps.uniform(5))
    created = client.post("/api/confluence/sources", json=source_body(server)).json()
    started = time.monotonic()
    with client.stream("GET", f"/api/progress/{created['progress_id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _read_events(response)
    assert time.monotonic() - started < 60
    names = [name for name, _ in events]
    assert names[-1] == "end" and names.count("end") == 1
    progress = [data for name, data in events if name == "progress"]
    assert len(progress) >= 2, names
    percents = [item["percent"] for item in progress]
    assert percents == sorted(percents), "percent went backwards"
    assert progress[-1]["status"] == "completed" and progress[-1]["percent"] == 100
    assert events[-1][1] == {"status": "completed"}
    assert all(item["progress_id"] == created["progress_id"] for item in progress)


def test_event_stream_of_a_finished_job_sends_its_state_and_ends(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=3)
    created = client.post("/api/confluence/sources", json=source_body(server)).json()
    final = wait_for_job(client, created["progress_id"])
    with client.stream("GET", f"/api/progress/{created['progress_id']}/events") as response:
        events = _read_events(response)
    assert [name for name, _ in events] == ["progress", "end"]
    assert events[0][1]["status"] == final["status"] == "completed"


def test_cancel_stops_the_job_and_keeps_what_was_stored(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    created = _slow_source(client, emulator_factory)
    progress_id = created["progress_id"]
    active = client.get("/api/progress").json()
    assert progress_id in [job["progress_id"] for job in active["jobs"]]
    assert active["count"] == len(active["jobs"])

    deadline = time.monotonic() + 20
    while (
        client.get(f"/api/progress/{progress_id}").json()["counters"].get("pages_processed", 0) < 2
    ):
        assert time.monotonic() < deadline, "the slow crawl never processed a page"
        time.sleep(0.1)
    asked = time.monotonic()
    cancelled = client.post(f"/api/progress/{progress_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_requested"] or cancelled.json()["status"] == "cancelled"
    final = wait_for_job(client, progress_id, timeout=10)
    assert final["status"] == "cancelled"
    assert time.monotonic() - asked < 5
    source = client.get(f"/api/confluence/sources/{created['source_id']}").json()
    assert 2 <= source["total_pages"] < SLOW_PAGES
    assert progress_id not in [
        job["progress_id"] for job in client.get("/api/progress").json()["jobs"]
    ]
    # Cancelling again is harmless and answers the final state.
    again = client.post(f"/api/progress/{progress_id}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_unknown_progress_id_is_a_404(client: httpx.Client) -> None:
    assert_error(client.get("/api/progress/0000"), 404, "job_not_found")
