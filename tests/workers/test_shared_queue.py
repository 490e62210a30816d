"""Two worker processes on one queue share the jobs and never run one job twice."""

from __future__ import annotations

import pytest

from confluence_rag.services import Services
from tests.plugins.emulator import EmulatorFactory
from tests.workers.conftest import Workers, add_source, body_fetches, db_counts, wait_for

SPACES = {"OPS": 14, "ENG": 14, "HR": 14, "SALES": 14, "LEGAL": 14}


@pytest.mark.slow
@pytest.mark.anyio
async def test_two_workers_share_the_queue_and_never_run_one_job_twice(
    services: Services, workers: Workers, emulator_factory: EmulatorFactory, pg_database_url: str
) -> None:
    server = emulator_factory("cloud", pages=14, extra_spaces=SPACES)
    # Each job's id listing waits until four are waiting: two jobs on each worker (each runs
    # two at most), so both workers provably take some, however the machine schedules them.
    listings = server.state.gates.add(path="/content/search", query="expand=version")
    keys = ["DEMO", *SPACES]
    sources = {key: await add_source(services, server, key) for key in keys}
    first, second = workers.start(jobs=2), workers.start(jobs=2)
    server.state.reset_requests()  # count only what the workers download
    jobs = {key: await services.jobs.submit(source_id) for key, source_id in sources.items()}
    await listings.held_async(4)
    listings.release()

    done = {
        key: await wait_for(services, job.id, lambda j: j.status == "completed", what=key)
        for key, job in jobs.items()
    }
    # Each job ran exactly once, start to end, on one worker; both workers took some.
    for key, job in done.items():
        assert job.checkpoint["attempt"] == 1, (key, job.log)
        assert not any("resuming" in line for line in job.log)
        assert job.lease_owner is None and job.result["attempts"] == 1
    ran_on = {job.checkpoint["worker"] for job in done.values()}
    assert ran_on == {first.worker_id, second.worker_id}

    # Every page was downloaded once in all (a job run twice would download its space twice)
    # and is stored once.
    expected = set().union(*(server.state.current_ids(key) for key in keys))
    fetched = body_fetches(server)
    assert set(fetched) == expected and set(fetched.values()) == {1}
    for key, job in done.items():
        counts = db_counts(pg_database_url, sources[key])
        assert counts.pages == counts.distinct_pages == job.counters["pages_processed"]
        assert counts.pages + job.counters["pages_skipped"] == len(server.state.current_ids(key))
        assert counts.duplicate_chunks == 0 and counts.pages_without_chunks == 0
