"""Sync through the served API on a real socket: a sync that fell due while the server was down
runs when it starts (the scheduler lives in the app's lifespan), and a sync's results are on the
progress resource."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from confluence_rag.api.app import create_app
from confluence_rag.services import build_services
from tests.api.conftest import ApiServer, wait_for_job
from tests.plugins.emulator import EmulatorFactory
from tests.sync.conftest import JOB_TIMEOUT, new_source


def test_missed_sync_runs_when_the_server_starts_and_reports_its_results(
    make_settings: Any, emulator_factory: EmulatorFactory
) -> None:
    import asyncio

    settings = make_settings(CONFLUENCE_RAG_SYNC_CHECK_SECONDS="0.2")
    server = emulator_factory("cloud", pages=15, extra_spaces={})
    state = server.state
    overdue = datetime.now(UTC) - timedelta(hours=3)

    async def prepare() -> str:
        # Added (not crawled) with its last sync three hours back and an hourly period: due
        # while no server ran. Its sync lists everything, as a first crawl would.
        async with build_services(settings) as services:
            source, _ = await services.sources.add(new_source(server), start=False)
            await services.store.update_source(
                source.id, last_sync_at=overdue, sync_frequency_hours=1.0
            )
            return source.id

    source_id = asyncio.run(prepare())
    trashed = sorted(state.current_ids("DEMO"))[-1]
    state.trash(trashed)
    expected = state.current_ids("DEMO")

    api = ApiServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=api.url, timeout=30) as client:
            url = f"/api/confluence/sources/{source_id}"
            deadline = time.monotonic() + JOB_TIMEOUT
            while True:
                source = client.get(url).json()
                synced = source["last_sync_at"]
                if source["progress_id"] is None and datetime.fromisoformat(synced) > overdue:
                    break
                assert time.monotonic() < deadline, source
                time.sleep(0.1)
            assert source["sync_status"] == "active"
            assert 0 < source["total_pages"] <= len(expected)  # should_skip may drop a few

            # A sync by hand now: nothing changed, and the results say so.
            queued = client.post(f"{url}/sync")
            assert queued.status_code == 202, queued.text
            job = wait_for_job(client, queued.json()["progress_id"], timeout=JOB_TIMEOUT)
            assert job["status"] == "completed" and job["kind"] == "sync"
            result = job["result"]
            for name in ("pages_added", "pages_updated", "pages_deleted", "pages_restored"):
                assert result[name] == 0, name
            assert result["chunks_embedded"] == 0 and result["duration_seconds"] >= 0
    finally:
        api.stop()

    async def scheduled_job() -> Any:
        async with build_services(settings) as services:
            jobs = await services.jobs.list(active_only=False, source_id=source_id)
            return [job for job in jobs if job.kind == "sync"]

    syncs = asyncio.run(scheduled_job())
    assert len(syncs) == 2  # the scheduled one, then the one by hand
    first = syncs[-1]  # newest first
    assert first.status == "completed"
    assert first.result["pages_listed"] == len(expected)
    assert first.result["pages_added"] == source["total_pages"]
    assert first.result["pages_deleted"] == 0
