"""A source's spaces crawled in parallel by two workers (one child job per space), searches
during that crawl seeing whole pages, cancel and failure of a split crawl, and the split on
SQLite when asked for."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from confluence_rag.emulator import FaultRule
from confluence_rag.errors import JobAlreadyRunning
from confluence_rag.records import JobRecord, SearchFilters
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings
from tests.plugins.emulator import EmulatorFactory
from tests.workers.conftest import Workers, add_source, db_counts, wait_for

pytestmark = pytest.mark.anyio


async def children_of(services: Services, parent: JobRecord) -> dict[str, JobRecord]:
    ids = dict(parent.checkpoint.get("children") or {})
    return {space: await services.jobs.get(child_id) for space, child_id in ids.items()}


@pytest.mark.slow
async def test_two_workers_crawl_the_spaces_of_one_source_in_parallel(
    services: Services, workers: Workers, emulator_factory: EmulatorFactory, pg_database_url: str
) -> None:
    server = emulator_factory("cloud", pages=50, extra_spaces={"OPS": 50})
    expected = server.state.current_ids("DEMO") | server.state.current_ids("OPS")
    # Held, not timed: each space's id listing waits until both are listing (so the two
    # children provably run at once), and two of the four body batches (25 ids each) wait
    # until the test has searched a half-written index a few times.
    listings = server.state.gates.add(path="/content/search", query="expand=version")
    bodies = server.state.gates.add(path="/content/search", query="body.storage", after=2)
    source_id = await add_source(services, server, "DEMO", "OPS")
    first, second = workers.start(jobs=1), workers.start(jobs=1)
    job = await services.jobs.submit(source_id)

    # Search while the workers write: every page a search returns is whole (all its chunks
    # are there, as many as when the crawl has ended) and live.
    seen: dict[str, int] = {}
    searches = 0
    deadline = time.monotonic() + 120
    while (current := await services.jobs.get(job.id)).status in ("queued", "running"):
        assert time.monotonic() < deadline, f"stuck: {current.log[-3:]} {listings} {bodies}"
        if listings.held == 2:
            listings.release()
        hits = await services.search.search("the", SearchFilters(source_id=source_id), limit=30)
        searches += 1
        for hit in hits:
            page = await services.store.get_page(hit.page_id)
            assert not page.is_deleted and page.chunk_count >= 1
            seen.setdefault(hit.page_id, page.chunk_count)
        if len(seen) >= 3 and searches >= 3 and bodies.waiting:
            bodies.release()
        await asyncio.sleep(0.05)
    assert current.status == "completed", current.error
    assert searches >= 3 and len(seen) >= 3 and listings.is_open and bodies.is_open

    # One child per space, run at the same time by the two workers.
    children = await children_of(services, current)
    assert set(children) == {"DEMO", "OPS"}
    assert all(child.status == "completed" for child in children.values())
    assert {c.checkpoint["worker"] for c in children.values()} == {
        first.worker_id,
        second.worker_id,
    }
    demo, ops = children["DEMO"], children["OPS"]
    assert demo.started_at and ops.started_at and demo.finished_at and ops.finished_at
    assert demo.started_at < ops.finished_at and ops.started_at < demo.finished_at
    assert demo.checkpoint["spaces"] == ["DEMO"] and demo.checkpoint["parent"] == job.id

    # The parent adds its children up and marks the source; every page is stored once.
    for name in ("pages_listed", "pages_processed", "pages_skipped", "chunks_embedded"):
        assert current.counters[name] == demo.counters[name] + ops.counters[name], name
    assert current.percent == 100.0 and current.checkpoint["finished_spaces"].keys() == {
        "DEMO",
        "OPS",
    }
    assert any("split into 2 per-space jobs" in line for line in current.log)
    counts = db_counts(pg_database_url, source_id)
    assert counts.pages == counts.distinct_pages == current.counters["pages_processed"]
    assert counts.pages + current.counters["pages_skipped"] == len(expected)
    assert counts.duplicate_chunks == 0 and counts.pages_without_chunks == 0
    for page_key, chunks in seen.items():
        assert (await services.store.get_page(page_key)).chunk_count == chunks, page_key
    source = await services.sources.get(source_id)
    assert source.sync_status == "active" and source.last_sync_at is not None


async def test_cancelling_a_split_crawl_cancels_its_spaces(
    pg_env: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=80, extra_spaces={"OPS": 80})
    # No body is served until the test is done: the spaces cannot finish before the cancel.
    server.state.gates.add(path="/content/search", query="body.storage")
    async with build_services(pg_env) as services:
        source_id = await add_source(services, server, "DEMO", "OPS")
        services.jobs.start()  # split is on by default with PostgreSQL
        job = await services.jobs.submit(source_id)
        parent = await wait_for(
            services,
            job.id,
            lambda j: len(j.checkpoint.get("children") or {}) == 2,
            what="the split",
        )
        children = await children_of(services, parent)
        # Surfaces list the job a person started; its parts only when asked for.
        assert [j.id for j in await services.jobs.list(source_id=source_id)] == [job.id]
        listed = await services.jobs.list(source_id=source_id, parts=True)
        assert {j.id for j in listed} == {job.id} | {c.id for c in children.values()}
        # A second request for the source names the job the person started, not a space.
        with pytest.raises(JobAlreadyRunning) as conflict:
            await services.jobs.submit(source_id, "sync")
        assert conflict.value.job_id == job.id

        cancelled = await services.jobs.cancel(job.id)
        assert cancelled.cancel_requested
        done = await services.jobs.wait(job.id, timeout=30)
        assert done.status == "cancelled"
        for child in children.values():
            assert (await services.jobs.wait(child.id, timeout=30)).status == "cancelled"
        assert await services.jobs.list(active_only=True) == []
        assert (await services.sources.get(source_id)).sync_status != "error"


async def test_split_on_sqlite_when_asked_and_a_failed_space_fails_the_crawl(
    emulator_factory: EmulatorFactory, embeddings_env: None, isolated_env: Path
) -> None:
    settings = Settings(
        data_dir=isolated_env,
        split_spaces=True,
        job_heartbeat_seconds=0.2,
        job_lease_seconds=1.5,
        max_retries=1,
        retry_after_max_seconds=0.2,
    )
    server = emulator_factory("cloud", pages=20, extra_spaces={"OPS": 12})
    async with build_services(settings) as services:
        source_id = await add_source(services, server, "DEMO", "OPS")
        services.jobs.start()
        ok = await services.jobs.wait((await services.jobs.submit(source_id)).id, timeout=60)
        assert ok.status == "completed", ok.error
        assert set(ok.checkpoint["children"]) == {"DEMO", "OPS"}
        stored = await services.store.page_versions(source_id)
        expected = server.state.current_ids("DEMO") | server.state.current_ids("OPS")
        assert len(stored) + ok.counters["pages_skipped"] == len(expected)

        server.state.add_fault(FaultRule(kind="500", path="/content/search"))
        failed = await services.jobs.wait((await services.jobs.submit(source_id)).id, timeout=60)
        assert failed.status == "failed"
        assert failed.error and failed.error.startswith("space ")
        children = await children_of(services, failed)
        assert all(child.status == "failed" for child in children.values())
        source = await services.sources.get(source_id)
        assert source.sync_status == "error" and source.sync_error == failed.error
