"""A worker that dies (SIGKILL) or stalls past its lease (SIGSTOP) mid-crawl: the other worker
takes the job over and finishes it from the checkpoint, with every page of the emulated space
stored exactly once, and the stalled one, when it wakes, stops without touching the job.

"Mid-crawl" is held, not hoped for: the crawl fetches bodies in batches of 25 ids (one request
each); the emulator lets the first batch through and holds the second until the test releases
it, so the first worker has stored exactly 25 of the 50 pages when it is killed or frozen,
however fast or slow the machine. (Two batches, not more: a held request keeps its client's
concurrency slot, and held batches filling every slot would starve the crawl's user lookups.)
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from confluence_rag.emulator import EmulatorServer, Gate
from confluence_rag.records import JobRecord
from confluence_rag.services import Services
from tests.plugins.emulator import EmulatorFactory
from tests.workers.conftest import Workers, add_source, db_counts, processed, wait_for

FIRST_BATCH = 25  # pages per body fetch (the crawl's batch of ids, the Cloud body cap)


def assert_every_page_once(url: str, source_id: str, expected: set[str], job: JobRecord) -> None:
    """The database against the emulator: each current page stored once, with its chunks."""
    counts = db_counts(url, source_id)
    c = job.counters
    assert counts.pages == counts.distinct_pages, "a page is stored twice"
    assert counts.pages + c["pages_skipped"] + c["pages_failed"] == len(expected)
    assert counts.pages == c["pages_processed"] + c["pages_unchanged"]
    assert counts.duplicate_chunks == 0 and counts.pages_without_chunks == 0
    assert counts.chunks >= counts.pages


def hold_after_first_batch(server: EmulatorServer) -> Gate:
    assert len(server.state.current_ids("DEMO")) == 2 * FIRST_BATCH
    return server.state.gates.add(path="/content/search", query="body.storage", after=1)


@pytest.mark.slow
@pytest.mark.anyio
async def test_sigkilled_worker_job_is_finished_by_the_other(
    services: Services, workers: Workers, emulator_factory: EmulatorFactory, pg_database_url: str
) -> None:
    server = emulator_factory("cloud", pages=2 * FIRST_BATCH, extra_spaces={})
    gate = hold_after_first_batch(server)
    expected = server.state.current_ids("DEMO")
    source_id = await add_source(services, server)
    doomed = workers.start()
    job = await services.jobs.submit(source_id)
    await gate.held_async(1)
    await wait_for(
        services, job.id, lambda j: processed(j) >= FIRST_BATCH, what="the first batch stored"
    )
    survivor = workers.start()  # idle: the job is leased to the doomed worker

    doomed.signal(signal.SIGKILL)
    assert doomed.wait() == -signal.SIGKILL
    orphan = await services.jobs.get(job.id)
    assert orphan.status == "running" and orphan.lease_owner == doomed.worker_id
    stored_at_kill = db_counts(pg_database_url, source_id).pages
    assert stored_at_kill == FIRST_BATCH
    gate.release()  # the survivor may now fetch the rest

    done = await wait_for(services, job.id, lambda j: j.status == "completed", what="takeover")
    assert done.checkpoint["attempt"] == 2
    assert done.checkpoint["worker"] == survivor.worker_id
    assert any("orphaned by a crash" in line for line in done.log)
    assert done.counters["pages_unchanged"] >= stored_at_kill
    assert_every_page_once(pg_database_url, source_id, expected, done)
    for page_id, (version, deleted) in (await services.store.page_versions(source_id)).items():
        assert not deleted and version == server.state.content(page_id).version
    source = await services.sources.get(source_id)
    assert source.sync_status == "active" and source.last_sync_at is not None


@pytest.mark.slow
@pytest.mark.anyio
async def test_stalled_worker_loses_its_lease_and_stops_without_touching_the_job(
    services: Services, workers: Workers, emulator_factory: EmulatorFactory, pg_database_url: str
) -> None:
    server = emulator_factory("cloud", pages=2 * FIRST_BATCH, extra_spaces={})
    gate = hold_after_first_batch(server)
    expected = server.state.current_ids("DEMO")
    source_id = await add_source(services, server)
    stalled = workers.start()
    job = await services.jobs.submit(source_id)
    await gate.held_async(1)
    await wait_for(
        services, job.id, lambda j: processed(j) >= FIRST_BATCH, what="the first batch stored"
    )
    other = workers.start()

    stalled.signal(signal.SIGSTOP)  # a frozen process: alive, but its heartbeat stops
    try:
        taken = await wait_for(
            services,
            job.id,
            lambda j: j.lease_owner == other.worker_id,
            what="the other worker to take the job over",
        )
        assert taken.status == "running"
    finally:
        stalled.signal(signal.SIGCONT)
    # Awake again, the stalled worker's next heartbeat fails: it stops its copy of the work.
    # The gate still holds its body fetches, so it cannot have stored anything since.
    deadline = asyncio.get_running_loop().time() + 90
    while "is no longer" not in stalled.log():
        assert asyncio.get_running_loop().time() < deadline, stalled.log()[-2000:]
        await asyncio.sleep(0.2)
    assert stalled.process.poll() is None  # it lives on and takes other jobs
    gate.release()

    done = await wait_for(services, job.id, lambda j: j.status == "completed", what="the end")
    assert done.checkpoint["worker"] == other.worker_id and done.checkpoint["attempt"] == 2
    assert_every_page_once(pg_database_url, source_id, expected, done)
    # Nothing the stalled worker does afterwards changes the finished job: even a graceful stop,
    # which puts the jobs a worker believes it runs back in the queue, leaves this one alone.
    stalled.signal(signal.SIGTERM)
    assert stalled.wait(timeout=60) == 0, stalled.log()[-2000:]
    assert await services.jobs.get(job.id) == done
