"""Crawl jobs end to end (emulator over a socket, real SQLite, fake embeddings over HTTP):
progress, conflicts, cancel, graceful stop and resume, failures, max_pages, Data Center."""

from __future__ import annotations

import asyncio
import base64
import logging
from typing import Any

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer, FaultRule, Gate
from confluence_rag.errors import InvalidInput, JobAlreadyRunning, JobNotFound, SourceNotFound
from confluence_rag.records import JobRecord
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings
from tests.ingest.conftest import new_source, run
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory


async def stored_ids(services: Services, source_id: str) -> dict[str, int]:
    versions = await services.store.page_versions(source_id)
    assert all(not deleted for _, deleted in versions.values())
    return {page_id: version for page_id, (version, _) in versions.items()}


def processed(job: JobRecord) -> int:
    return int(job.counters.get("pages_processed", 0))


BATCH = 25  # pages per body fetch: the crawl's batch of ids, one request each


def hold_bodies(server: EmulatorServer, after: int = 1) -> Gate:
    """Hold the crawl's body fetches after the first ``after``: the job provably stays mid-way
    (its stored pages fixed) until the test releases the gate, however fast the machine. Hold
    one batch at a time: a held request keeps one of the client's concurrency slots."""
    return server.state.gates.add(path="/content/search", query="body.storage", after=after)


async def watch_until(services: Services, job_id: str, condition: Any) -> JobRecord:
    last = None
    async for job in services.jobs.watch(job_id):
        if condition(job):
            return job
        last = job
    raise AssertionError(f"the job ended before the condition held: {last}")


def test_crawl_two_spaces_with_progress_and_conflict(
    fast_settings: Settings,
    emulator_factory: EmulatorFactory,
    fake_embeddings: FakeEmbeddingServer,
) -> None:
    server = emulator_factory("cloud", pages=40, extra_spaces={"OPS": 8})
    expected = server.state.current_ids("DEMO") | server.state.current_ids("OPS")

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server, "DEMO", "OPS"))
            assert job is not None and job.status == "queued" and job.kind == "crawl"
            # One job per source: a second request names the active job.
            with pytest.raises(JobAlreadyRunning) as info:
                await services.jobs.submit(source.id, "sync")
            assert info.value.job_id == job.id
            assert info.value.to_dict()["error"]["details"]["progress_id"] == job.id
            with pytest.raises(SourceNotFound):
                await services.jobs.submit("nope:X")
            with pytest.raises(InvalidInput):
                await services.jobs.submit(source.id, "reindex")
            with pytest.raises(JobNotFound):
                await services.jobs.get("no-such-job")

            services.jobs.start()
            seen = [j async for j in services.jobs.watch(job.id)]
            done = seen[-1]
            assert done.status == "completed", done.error
            percents = [j.percent for j in seen]
            assert percents == sorted(percents) and percents[-1] == 100.0
            assert {j.stage for j in seen} >= {"done"}
            counters = done.counters
            assert counters["pages_listed"] == len(expected)
            assert counters["pages_failed"] == 0
            assert counters["pages_processed"] + counters["pages_skipped"] == len(expected)
            assert counters["pages_added"] == counters["pages_processed"]
            assert counters["chunks_embedded"] > counters["pages_processed"]
            assert done.result["pages_processed"] == counters["pages_processed"]
            assert done.started_at and done.finished_at and done.finished_at >= done.started_at
            assert done.checkpoint["finished_spaces"].keys() == {"DEMO", "OPS"}
            assert any("completed" in line for line in done.log)

            stored = await stored_ids(services, source.id)
            assert set(stored) <= expected
            assert len(stored) == counters["pages_processed"]
            assert await services.store.count_pages(source.id) == len(stored)
            for page_id, version in stored.items():
                assert version == server.state.content(page_id).version
            source = await services.sources.get(source.id)
            assert source.sync_status == "active" and source.sync_error is None
            assert source.last_sync_at is not None and source.page_count == len(stored)

            # A second crawl finds everything stored at the listed version: nothing to embed.
            embedded_before = fake_embeddings.texts_embedded
            again = await services.jobs.wait((await services.jobs.submit(source.id)).id)
            assert again.status == "completed"
            assert again.counters["pages_unchanged"] == len(stored)
            assert again.counters["chunks_embedded"] == 0
            # Only the one-text model check each job starts with.
            assert fake_embeddings.texts_embedded == embedded_before + 1
            assert await stored_ids(services, source.id) == stored

    run(scenario())


def test_edited_page_is_updated_and_unchanged_chunks_reused(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("datacenter", pages=12, extra_spaces={})

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            services.jobs.start()
            assert job is not None
            assert (await services.jobs.wait(job.id)).status == "completed"
            stored = await stored_ids(services, source.id)
            page_id = sorted(stored)[0]
            record = server.state.content(page_id)
            version = record.version
            server.state.edit_page(page_id, body=record.body + "<p>One more paragraph.</p>")
            again = await services.jobs.wait((await services.jobs.submit(source.id)).id)
            assert again.status == "completed", again.error
            assert again.counters["pages_updated"] == 1
            assert again.counters["pages_unchanged"] == len(stored) - 1
            assert again.counters["chunks_reused"] >= 1  # the unchanged chunks of that page
            assert (await stored_ids(services, source.id))[page_id] == version + 1

    run(scenario())


def test_cancel_mid_crawl_keeps_pages_and_a_later_crawl_completes(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=2 * BATCH, extra_spaces={})
    gate = hold_bodies(server)
    expected = server.state.current_ids("DEMO")

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            await gate.held_async(1)
            await watch_until(services, job.id, lambda j: processed(j) >= BATCH)
            # The second batch stays held: only a prompt cancel ends this job.
            await services.jobs.cancel(job.id)
            cancelled = await services.jobs.wait(job.id, timeout=180)
            assert cancelled.status == "cancelled"
            assert cancelled.finished_at is not None and cancelled.cancel_requested
            kept = await stored_ids(services, source.id)
            assert cancelled.counters["pages_processed"] == len(kept) == BATCH
            # Cancelling a finished job changes nothing.
            assert (await services.jobs.cancel(job.id)).status == "cancelled"
            gate.release()

            second = await services.jobs.wait((await services.jobs.submit(source.id)).id)
            assert second.status == "completed", second.error
            assert second.counters["pages_unchanged"] == len(kept)
            final = await stored_ids(services, source.id)
            c = second.counters
            assert len(final) == c["pages_processed"] + c["pages_unchanged"]
            assert len(final) + c["pages_skipped"] == len(expected)
            assert await services.store.count_pages(source.id) == len(final)

    run(scenario())


def test_cancel_a_queued_job(fast_settings: Settings, emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=3)

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            cancelled = await services.jobs.cancel(job.id)
            assert cancelled.status == "cancelled"
            assert await services.jobs.list(active_only=True) == []
            # The source is free for a new job now.
            assert (await services.jobs.submit(source.id)).status == "queued"

    run(scenario())


def test_graceful_stop_requeues_and_resume_skips_finished_spaces(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=6, extra_spaces={"OPS": 2 * BATCH})
    expected = server.state.current_ids("DEMO") | server.state.current_ids("OPS")
    assert len(expected) == 6 + 2 * BATCH
    gate = hold_bodies(server, after=2)  # DEMO's one batch and one of OPS's two

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server, "DEMO", "OPS"))
            assert job is not None
            services.jobs.start()
            await gate.held_async(1)
            await watch_until(
                services,
                job.id,
                lambda j: (
                    "DEMO" in j.checkpoint.get("finished_spaces", {})
                    # every page of the two batches let through is stored or skipped
                    and processed(j) + j.counters.get("pages_skipped", 0) >= 6 + BATCH
                ),
            )
        # Leaving build_services stopped the runner: the job waits to resume.
        gate.release()
        async with build_services(fast_settings) as services:
            paused = await services.jobs.get(job.id)
            assert paused.status == "queued"
            assert "interrupted" in paused.log[-1]
            assert paused.checkpoint["attempt"] == 1
            services.jobs.start()
            done = await services.jobs.wait(job.id, timeout=180)
            assert done.status == "completed", done.error
            assert done.checkpoint["attempt"] == 2
            assert any("already finished before: DEMO" in line for line in done.log)
            stored = await stored_ids(services, source.id)
            c = done.counters
            assert c["pages_listed"] == len(expected)
            assert len(stored) + c["pages_skipped"] + c["pages_failed"] == len(expected)
            assert await services.store.count_pages(source.id) == len(stored)

    run(scenario())


def test_max_pages_is_honoured(fast_settings: Settings, emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=40, extra_spaces={"OPS": 8})

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(
                new_source(server, "DEMO", "OPS", max_pages=15)
            )
            services.jobs.start()
            assert job is not None
            done = await services.jobs.wait(job.id)
            assert done.status == "completed"
            assert done.counters["pages_listed"] == 15
            stored = await stored_ids(services, source.id)
            assert len(stored) == 15 - done.counters["pages_skipped"]
            assert set(stored) <= server.state.current_ids("DEMO")

    run(scenario())


def test_listing_failure_fails_the_job_with_a_clear_scrubbed_error(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=10, extra_spaces={})
    settings = fast_settings.model_copy(update={"max_retries": 1})

    async def scenario() -> None:
        async with build_services(settings) as services:
            source, job = await services.sources.add(new_source(server), start=False)
            server.state.add_fault(FaultRule(kind="500", path="/content/search"))
            services.jobs.start()
            job = await services.jobs.submit(source.id)
            failed = await services.jobs.wait(job.id, timeout=180)
            assert failed.status == "failed"
            assert failed.error and "DEMO" in failed.error
            assert DEMO_API_TOKEN not in failed.error
            source = await services.sources.get(source.id)
            assert source.sync_status == "error" and source.sync_error == failed.error
            assert source.last_sync_at is None
            # It recovers: the next crawl works.
            server.state.clear_faults()
            ok = await services.jobs.wait((await services.jobs.submit(source.id)).id)
            assert ok.status == "completed"
            source = await services.sources.get(source.id)
            assert source.sync_status == "active" and source.sync_error is None

    run(scenario())


def test_delete_cancels_the_running_job(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=2 * BATCH, extra_spaces={})
    gate = hold_bodies(server)

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            await gate.held_async(1)
            await watch_until(services, job.id, lambda j: processed(j) >= BATCH)
            # The second batch stays held: the job is running when its source goes.
            await asyncio.wait_for(services.sources.delete(source.id), timeout=180)
            assert await services.sources.list() == []
            assert (await services.jobs.get(job.id)).status == "cancelled"

    run(scenario())


def test_at_most_max_concurrent_jobs_run_at_once(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    settings = fast_settings.model_copy(update={"max_concurrent_jobs": 1})
    server = emulator_factory("cloud", pages=30, extra_spaces={"OPS": 20})
    # The first job to run waits at its listing, so the test sees it running and the other
    # queued, rather than (on a fast run) both already completed.
    listing = server.state.gates.add(path="/content/search")

    async def scenario() -> None:
        async with build_services(settings) as services:
            first, _ = await services.sources.add(new_source(server, "DEMO"), start=False)
            second, _ = await services.sources.add(new_source(server, "OPS"), start=False)
            services.jobs.start()
            jobs = [await services.jobs.submit(s.id) for s in (first, second)]
            await listing.held_async(1)
            states = [(await services.jobs.get(j.id)).status for j in jobs]
            assert sorted(states) == ["queued", "running"]
            assert len(services.jobs.running_here) == 1
            listing.release()
            most = 1
            while True:
                states = [(await services.jobs.get(j.id)).status for j in jobs]
                most = max(most, states.count("running"), len(services.jobs.running_here))
                if all(state == "completed" for state in states):
                    break
                assert not {"failed", "cancelled"} & set(states)
                await asyncio.sleep(0.05)
            assert most == 1

    run(scenario())


def test_no_secret_in_any_log_line(
    fast_settings: Settings, emulator_factory: EmulatorFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = emulator_factory("cloud", pages=15, extra_spaces={})
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            server.state.add_fault(FaultRule(kind="429", probability=0.2))
            services.jobs.start()
            assert (await services.jobs.wait(job.id)).status == "completed"
        # A failing run logs too: its error path must be clean as well.
        server.state.add_fault(FaultRule(kind="500", path="/content/search"))
        async with build_services(fast_settings.model_copy(update={"max_retries": 1})) as services:
            services.jobs.start()
            failed = await services.jobs.wait((await services.jobs.submit(source.id)).id)
            assert failed.status == "failed"

    run(scenario())
    header = base64.b64encode(f"{DEMO_EMAIL}:{DEMO_API_TOKEN}".encode()).decode()
    assert len(caplog.records) > 10
    for record in caplog.records:
        text = record.getMessage()
        assert DEMO_API_TOKEN not in text and header not in text, text
