"""A sync whose id listing breaks half-way deletes nothing, end to end through the HTTP API.

The app (``create_app`` under uvicorn, SQLite in tmp) crawls a 120-page emulated space whose id
listing comes 20 ids per request. Ten pages are then trashed in Confluence and one is edited,
and the emulator answers 500 to the 4th listing request until the client's retries run out: the
listing stops at 60 of ~117 ids. The sync goes on with the change window (the edit is picked up),
but deletes nothing: every page stays stored and findable. The next sync, with Confluence
healthy again, deletes exactly the ten trashed pages, so the first sync's restraint was a
decision, not an accident. (``tests/ingest`` covers the sync job itself in detail.)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from confluence_rag.api.app import create_app
from confluence_rag.emulator import FaultRule
from confluence_rag.emulator.config import LimitCaps
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer, source_body
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.reliability.crawl_audit import audit_sqlite

MAX_RETRIES = 2
EDIT_PHRASE = "vermilion_listing_edit"


@pytest.fixture
def api(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[httpx.Client, Settings]]:
    with FakeEmbeddingServer(dimension=32) as embeddings:
        for name, value in embeddings.settings_env().items():
            monkeypatch.setenv(name, value)
        settings = Settings(
            data_dir=isolated_env, max_retries=MAX_RETRIES, retry_after_max_seconds=0.2
        )
        server = ApiServer(create_app(settings)).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                yield client, settings
        finally:
            server.stop()


def finish(client: httpx.Client, progress_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while (job := client.get(f"/api/progress/{progress_id}").json())["status"] in (
        "queued",
        "running",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    return job


def keyword_hits(client: httpx.Client, query: str) -> list[str]:
    response = client.post("/api/search", json={"query": query, "retriever": "keyword", "limit": 5})
    assert response.status_code == 200, response.text
    return [hit["page_id"] for hit in response.json()["results"]]


@pytest.mark.slow
def test_a_sync_whose_listing_breaks_half_way_deletes_nothing(
    api: tuple[httpx.Client, Settings], emulator_factory: EmulatorFactory
) -> None:
    client, settings = api
    server = emulator_factory(
        "cloud", pages=120, extra_spaces={}, caps=LimitCaps(body=25, expand=20, bare=20)
    )
    added = client.post(
        "/api/confluence/sources",
        json=source_body(server),
    )
    assert added.status_code == 201, added.text
    source_id = added.json()["source_id"]
    assert finish(client, added.json()["progress_id"])["status"] == "completed"
    before = audit_sqlite(settings.sqlite_path, source_id)
    assert before.clean and len(before.versions) > 100

    markers = server.state.markers("DEMO")
    with_marker = sorted(p for p in before.versions if p in markers)
    doomed, edited = with_marker[:10], with_marker[10]
    for page_id in doomed:
        server.state.trash(page_id)
    server.state.edit_page(edited, body=f"<p>Edited after the crawl: {EDIT_PHRASE} here.</p>")
    # The 4th id-listing request (ids 61-80) fails on every attempt; the fault then runs out,
    # so the change window and the fetches after it are served normally.
    rule = FaultRule(kind="500", path="/content/search", after=3, times=MAX_RETRIES + 1)
    server.state.add_fault(rule)

    sync = client.post(f"/api/confluence/sources/{source_id}/sync")
    assert sync.status_code in (200, 201, 202), sync.text
    job = finish(client, sync.json()["progress_id"])
    assert server.state.faults.fired()["500"] == MAX_RETRIES + 1
    assert job["status"] == "completed", job
    assert any("no page is deleted" in line for line in job["log"]), job["log"]
    assert job["counters"].get("pages_deleted", 0) == 0

    after = audit_sqlite(settings.sqlite_path, source_id)
    assert after.clean, after.problems()
    assert set(after.versions) == set(before.versions) and not after.deleted
    assert after.versions[edited] == server.state.content(edited).version  # the edit landed
    assert keyword_hits(client, EDIT_PHRASE)[0] == f"{source_id}:{edited}"
    for page_id in doomed:  # trashed in Confluence, still stored and findable
        assert f"{source_id}:{page_id}" in keyword_hits(client, markers[page_id])

    # Confluence healthy again: the next sync deletes exactly the trashed pages.
    server.state.clear_faults()
    again = client.post(f"/api/confluence/sources/{source_id}/sync")
    job = finish(client, again.json()["progress_id"])
    assert job["status"] == "completed", job
    assert job["counters"]["pages_deleted"] == len(doomed)
    final = audit_sqlite(settings.sqlite_path, source_id)
    assert final.clean, final.problems()
    assert set(final.versions) == set(before.versions) - set(doomed)
    assert final.deleted == set(doomed)
    for page_id in doomed:
        assert f"{source_id}:{page_id}" not in keyword_hits(client, markers[page_id])
