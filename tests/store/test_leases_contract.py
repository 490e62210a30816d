"""Store contract: job leases (every backend). Runners sharing one queue never take the same
job; a lapsed lease is taken over and its old owner learns it on its next heartbeat."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from confluence_rag.errors import InvalidInput
from confluence_rag.records import JobRecord
from confluence_rag.store import Store
from tests.store import builders as b

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ready(store: Store) -> Store:
    await store.create_source(b.source())
    return store


async def test_concurrent_claims_never_take_one_job_twice(ready: Store) -> None:
    for i in range(12):
        await ready.create_job(JobRecord(id=f"job-{i:02d}", source_id=b.SOURCE, kind="crawl"))

    async def runner(name: str) -> list[str]:
        taken = []
        while (job := await ready.claim_next_job(name, ["crawl"], 60)) is not None:
            assert job.status == "running" and job.lease_owner == name
            taken.append(job.id)
        return taken

    results = await asyncio.gather(*(runner(f"w{n}") for n in range(4)))
    claimed = Counter(job_id for taken in results for job_id in taken)
    assert sorted(claimed) == [f"job-{i:02d}" for i in range(12)]
    assert set(claimed.values()) == {1}
    # Nothing is left to take while the leases are live.
    assert await ready.claim_next_job("late", ["crawl"], 60) is None
    assert await ready.claim_job("job-00", "late", 60) is None


async def test_the_oldest_claimable_job_goes_first(ready: Store) -> None:
    for job_id in ("first", "second"):
        await ready.create_job(JobRecord(id=job_id, source_id=b.SOURCE, kind="sync"))
    job = await ready.claim_next_job("w", ["sync"], 30)
    assert job is not None and job.id == "first" and job.started_at is not None
    assert job.heartbeat_at is not None and job.lease_expires_at is not None
    assert job.lease_expires_at > job.heartbeat_at


async def test_a_lapsed_lease_is_taken_over_and_the_old_owner_loses_it(ready: Store) -> None:
    await ready.create_job(
        JobRecord(
            id="j1", source_id=b.SOURCE, kind="crawl", checkpoint={"finished_spaces": ["DEV"]}
        )
    )
    first = await ready.claim_job("j1", "worker-a", 30)
    assert first is not None and first.lease_owner == "worker-a"
    assert await ready.renew_lease("j1", "worker-a", 30)
    assert await ready.claim_job("j1", "worker-b", 30) is None  # the lease is live

    assert await ready.renew_lease("j1", "worker-a", 0.05)  # worker-a's last heartbeat...
    deadline = time.monotonic() + 60
    while (second := await ready.claim_job("j1", "worker-b", 30)) is None:  # ...then it died
        assert time.monotonic() < deadline, "the lease never lapsed"
        await asyncio.sleep(0.05)
    assert second.lease_owner == "worker-b" and second.status == "running"
    assert dict(second.checkpoint) == {"finished_spaces": ["DEV"]}  # resumes where a stopped
    assert second.started_at == first.started_at
    assert not await ready.renew_lease("j1", "worker-a", 30)  # a must stop
    assert await ready.renew_lease("j1", "worker-b", 30)


async def test_finished_and_cancelled_jobs_are_not_claimed(ready: Store) -> None:
    await ready.create_job(JobRecord(id="done", source_id=b.SOURCE, kind="crawl"))
    await ready.update_job("done", status="completed")
    await ready.create_job(JobRecord(id="stop", source_id=b.SOURCE, kind="crawl"))
    await ready.update_job("stop", cancel_requested=True)
    await ready.create_job(JobRecord(id="other", source_id=b.SOURCE, kind="sync"))
    assert await ready.claim_job("done", "w", 30) is None
    assert await ready.claim_job("stop", "w", 30) is None
    assert await ready.claim_next_job("w", ["crawl"], 30) is None
    assert await ready.claim_next_job("w", [], 30) is None
    job = await ready.claim_next_job("w", ["crawl", "sync"], 30)
    assert job is not None and job.id == "other"
    assert not await ready.renew_lease("done", "w", 30)  # never this runner's


async def test_a_deleted_source_ends_its_leases(ready: Store) -> None:
    await ready.create_job(JobRecord(id="j", source_id=b.SOURCE, kind="crawl"))
    assert await ready.claim_job("j", "w", 30) is not None
    await ready.delete_source(b.SOURCE)
    assert not await ready.renew_lease("j", "w", 30)


async def test_bad_lease_arguments_are_refused(ready: Store) -> None:
    await ready.create_job(JobRecord(id="j", source_id=b.SOURCE, kind="crawl"))
    with pytest.raises(InvalidInput):
        await ready.claim_next_job("", ["crawl"], 30)
    with pytest.raises(InvalidInput):
        await ready.claim_job("j", "w", 0)
    with pytest.raises(InvalidInput):
        await ready.renew_lease("j", "w", -1)
