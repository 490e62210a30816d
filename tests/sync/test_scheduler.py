"""The scheduler inside a running service: a due source (its sync fell due while nothing ran)
is synced once on start; a paused one is not; stopping is clean."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from confluence_rag.ingest.scheduler import SyncScheduler
from confluence_rag.records import JobRecord, SourceRecord
from confluence_rag.services import build_services
from tests.plugins.emulator import EmulatorFactory
from tests.sync.conftest import JOB_TIMEOUT, new_source

pytestmark = pytest.mark.anyio


async def test_scheduler_fires_a_due_source_once_and_skips_a_paused_one(
    make_settings: Any, emulator_factory: EmulatorFactory
) -> None:
    settings = make_settings(CONFLUENCE_RAG_SYNC_CHECK_SECONDS="0.1")
    server = emulator_factory("cloud", pages=12, extra_spaces={"OPS": 5})
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    async with build_services(settings) as services:
        due, _ = await services.sources.add(new_source(server, "DEMO"), start=False)
        paused, _ = await services.sources.add(new_source(server, "OPS"), start=False)
        manual, _ = await services.sources.add(new_source(server, "DEMO", "OPS"), start=False)
        for record, fields in (
            (due, {}),
            (paused, {"paused": True}),
            (manual, {"sync_frequency_hours": 0.0}),
        ):
            await services.store.update_source(
                record.id,
                last_sync_at=two_hours_ago,
                **{"sync_frequency_hours": 1.0, **fields},
            )

        services.jobs.start()
        services.scheduler.start()
        async with asyncio.timeout(JOB_TIMEOUT):
            while not (jobs := await services.jobs.list(active_only=False, source_id=due.id)):
                await asyncio.sleep(0.05)
        done = await services.jobs.wait(jobs[0].id, timeout=JOB_TIMEOUT)
        assert done.kind == "sync" and done.status == "completed", done.error
        assert done.counters["pages_added"] > 0
        # More checks (called here rather than waited for): the source is not due again.
        for _ in range(3):
            assert await services.scheduler.check_once() == []
        assert len(await services.jobs.list(active_only=False, source_id=due.id)) == 1
        assert await services.jobs.list(active_only=False, source_id=paused.id) == []
        assert await services.jobs.list(active_only=False, source_id=manual.id) == []
        assert services.scheduler.submitted == [done.id]
        synced = await services.store.get_source(due.id)
        assert synced.last_sync_at is not None and synced.last_sync_at > two_hours_ago

        await services.scheduler.stop()
        assert not services.scheduler.running


async def test_due_times_count_from_the_last_attempt_with_stable_jitter(
    make_settings: Any,
) -> None:
    settings = make_settings(CONFLUENCE_RAG_SYNC_JITTER_SECONDS="300")
    async with build_services(settings) as services:
        scheduler = SyncScheduler(services.store, services.jobs, settings)
        synced = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        source = SourceRecord(id="site:A", site_url="https://x", last_sync_at=synced)
        # A failed attempt after the last good sync moves the reference: no retry every check.
        later = synced + timedelta(hours=3)
        failed = JobRecord(id="j1", source_id="site:A", kind="sync", status="failed")
        failed = dataclasses.replace(failed, created_at=later)
        assert scheduler.reference_time(source, failed) == later
        # A job that just completed counts before the runner has moved last_sync_at.
        completed = dataclasses.replace(failed, status="completed")
        assert scheduler.reference_time(source, completed) == later
        older = dataclasses.replace(completed, created_at=synced - timedelta(minutes=1))
        assert scheduler.reference_time(source, older) == synced
        assert scheduler.reference_time(source, None) == synced
        added = datetime(2026, 10, 1, tzinfo=UTC)
        fresh = SourceRecord(id="site:B", site_url="https://x", created_at=added)
        assert scheduler.reference_time(fresh, None) == added
        offsets = {scheduler.jitter_seconds(f"site:{n}", synced) for n in range(50)}
        assert all(0 <= value < 300 for value in offsets)
        assert len(offsets) == 50 and max(offsets) - min(offsets) > 150  # spread out
        assert scheduler.jitter_seconds("site:A", synced) == scheduler.jitter_seconds(
            "site:A", synced
        )
        due_at = scheduler.due_at(source, synced)
        assert synced + timedelta(hours=24) <= due_at < synced + timedelta(hours=24, minutes=5)
