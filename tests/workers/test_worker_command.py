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
    server = emulator_factory("cloud", pages=90, extra_spaces={}, latency_ms=30)
    expected = server.state.current_ids("DEMO")
    source_id = await add_source(services, server)
    first = workers.start()
    job = await services.jobs.submit(source_id)
    await wait_for(services, job.id, lambda j: processed(j) >= 10, what="10 pages stored")

    first.signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, first.log()
    assert first.process.stdout is not None
    assert "stopped" in first.process.stdout.read()
    paused = await services.jobs.get(job.id)
    assert paused.status == "queued" and paused.lease_owner is None, paused.log[-3:]
    assert "interrupted" in paused.log[-1]
    kept = db_counts(pg_database_url, source_id).pages
    assert 10 <= kept < len(expected)

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
