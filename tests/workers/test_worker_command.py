"""`confluence-rag worker`: refuses SQLite with the reason, and stops gracefully on SIGTERM
(its job goes back to the queue and another worker resumes it)."""

from __future__ import annotations

import signal

import pytest
from typer.testing import CliRunner

from confluence_rag.cli.main import app
from confluence_rag.emulator import DEMO_API_TOKEN
from confluence_rag.services import Services
from tests.plugins.emulator import EmulatorFactory
from tests.workers.conftest import Workers, add_source, db_counts, processed, wait_for


def test_worker_refuses_sqlite_and_says_what_to_do() -> None:
    result = CliRunner().invoke(app, ["worker"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "needs PostgreSQL" in message and "CONFLUENCE_RAG_DATABASE_URL" in message
    assert "confluence-rag serve" in message

    helped = CliRunner().invoke(app, ["worker", "--help"])
    assert helped.exit_code == 0 and "--jobs" in helped.output


@pytest.mark.slow
@pytest.mark.anyio
async def test_sigterm_requeues_the_job_and_another_worker_resumes_it(
    services: Services, workers: Workers, emulator_factory: EmulatorFactory, pg_database_url: str
) -> None:
    # Bodies come 25 ids per request: the emulator lets the first batch through and holds the
    # second, so the job is provably mid-way (25 of 50 pages stored) when SIGTERM arrives.
    server = emulator_factory("cloud", pages=50, extra_spaces={})
    gate = server.state.gates.add(path="/content/search", query="body.storage", after=1)
    expected = server.state.current_ids("DEMO")
    assert len(expected) == 50
    source_id = await add_source(services, server)
    first = workers.start()
    job = await services.jobs.submit(source_id)
    await gate.held_async(1)
    await wait_for(services, job.id, lambda j: processed(j) >= 25, what="25 pages stored")

    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, first.log()
    assert first.process.stdout is not None
    assert "stopped" in first.process.stdout.read()
    paused = await services.jobs.get(job.id)
    assert paused.status == "queued" and paused.lease_owner is None, paused.log[-3:]
    assert "interrupted" in paused.log[-1]
    kept = db_counts(pg_database_url, source_id).pages
    assert kept == 25
    gate.release()

    second = workers.start()
    done = await wait_for(services, job.id, lambda j: j.status == "completed", what="the end")
    assert done.checkpoint["attempt"] == 2 and done.checkpoint["worker"] == second.worker_id
    assert any("previous run was interrupted" in line for line in done.log)
    assert done.counters["pages_unchanged"] >= kept
    counts = db_counts(pg_database_url, source_id)
    assert counts.pages == counts.distinct_pages
    assert counts.pages + done.counters["pages_skipped"] == len(expected)
    assert counts.duplicate_chunks == 0 and counts.pages_without_chunks == 0
    assert DEMO_API_TOKEN not in first.log() + second.log()
