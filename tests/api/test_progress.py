"""Progress over HTTP: polling with ETag / 304, server-sent events, cancel, active jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from confluence_rag.emulator import Gate, LimitCaps
from tests.api.conftest import source_body, wait_for_job
from tests.api.test_errors import assert_error
from tests.plugins.emulator import EmulatorFactory

BATCH = 25  # pages per body fetch: the crawl's batch of ids, one request each


def _held_source(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> tuple[dict[str, Any], Gate, Gate]:
    """A source whose crawl the test holds twice: at its id listing (``listing``, nothing
    stored yet), then after its first batch of bodies (``bodies``: 25 of the 50 pages stored,
    the second batch held). Holding, not a slow emulator, keeps the job mid-way for as long as
    the test needs, however fast or slow the machine."""
    server = emulator_factory("cloud", pages=2 * BATCH, extra_spaces={})
    listing = server.state.gates.add(path="/content/search", query="expand=version")
    bodies = server.state.gates.add(path="/content/search", query="body.storage", after=1)
    created = client.post("/api/confluence/sources", json=source_body(server))
    assert created.status_code == 201, created.text
    return dict(created.json()), listing, bodies


def _wait_for_processed(client: httpx.Client, progress_id: str, pages: int) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while True:
        job: dict[str, Any] = client.get(f"/api/progress/{progress_id}").json()
        if job["counters"].get("pages_processed", 0) >= pages:
            return job
        assert job["status"] == "running", job
        assert time.monotonic() < deadline, f"{pages} pages never processed: {job}"
        time.sleep(0.1)


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
    created, listing, bodies = _held_source(client, emulator_factory)
    url = f"/api/progress/{created['progress_id']}"
    listing.wait_held(1)
    first = client.get(url)  # nothing stored: the crawl is held at its listing
    assert first.headers["x-poll-interval"] == "1"
    assert first.json()["counters"].get("pages_processed", 0) == 0
    listing.release()
    bodies.wait_held(1)
    _wait_for_processed(client, created["progress_id"], BATCH)
    second = client.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.json()["counters"]["pages_processed"] == BATCH
    bodies.release()
    final = wait_for_job(client, created["progress_id"])
    assert final["status"] == "completed"
    third = client.get(url, headers={"If-None-Match": second.headers["etag"]})
    assert third.status_code == 200
    assert len({first.headers["etag"], second.headers["etag"], third.headers["etag"]}) == 3


def _read_events(
    response: httpx.Response, after_first: Callable[[], None] = lambda: None
) -> list[tuple[str, dict[str, Any]]]:
    """Every event of the stream; ``after_first`` runs once the first one has arrived."""
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
            if len(events) == 1:
                after_first()
    return events


def test_event_stream_yields_each_change_and_ends_with_the_job(
    client: httpx.Client, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=25, caps=LimitCaps.uniform(5))
    # The crawl waits at its listing until the stream has sent its first event, so the stream
    # sees the job move rather than, on a fast run, only its end.
    listing = server.state.gates.add(path="/content/search", query="expand=version")
    created = client.post("/api/confluence/sources", json=source_body(server)).json()
    with client.stream("GET", f"/api/progress/{created['progress_id']}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = _read_events(response, after_first=listing.release)
    names = [name for name, _ in events]
    assert names[-1] == "end" and names.count("end") == 1
    progress = [data for name, data in events if name == "progress"]
    assert len(progress) >= 2, names
    assert progress[0]["status"] in ("queued", "running")
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
    created, listing, bodies = _held_source(client, emulator_factory)
    progress_id = created["progress_id"]
    active = client.get("/api/progress").json()
    assert progress_id in [job["progress_id"] for job in active["jobs"]]
    assert active["count"] == len(active["jobs"])

    listing.release()
    bodies.wait_held(1)
    _wait_for_processed(client, progress_id, BATCH)
    # The second batch stays held: only a prompt cancel can end this job.
    cancelled = client.post(f"/api/progress/{progress_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_requested"] or cancelled.json()["status"] == "cancelled"
    final = wait_for_job(client, progress_id)
    assert final["status"] == "cancelled"
    source = client.get(f"/api/confluence/sources/{created['source_id']}").json()
    assert source["total_pages"] == BATCH
    assert progress_id not in [
        job["progress_id"] for job in client.get("/api/progress").json()["jobs"]
    ]
    # Cancelling again is harmless and answers the final state.
    again = client.post(f"/api/progress/{progress_id}/cancel")
    assert again.status_code == 200 and again.json()["status"] == "cancelled"


def test_unknown_progress_id_is_a_404(client: httpx.Client) -> None:
    assert_error(client.get("/api/progress/0000"), 404, "job_not_found")
