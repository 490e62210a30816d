"""Job leases across processes on PostgreSQL: separate pools (worker processes) never take the
same job, and a SIGKILLed worker's job is taken over. The backend-neutral lease contract is in
``tests/store/test_leases_contract.py``."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import pytest

from confluence_rag.records import JobRecord
from confluence_rag.store.postgres import PostgresStore
from tests.store import builders as b

pytestmark = pytest.mark.anyio


async def test_concurrent_workers_never_claim_one_job_twice(pg_database_url: str) -> None:
    # Separate stores = separate pools, like separate worker processes.
    stores = [PostgresStore(pg_database_url, max_connections=3) for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        await stores[0].create_source(b.source())
        for i in range(40):
            await stores[0].create_job(
                JobRecord(id=f"job-{i:02d}", source_id=b.SOURCE, kind="crawl")
            )

        async def worker(store: PostgresStore, name: str) -> list[str]:
            taken = []
            while (job := await store.claim_next_job(name, ["crawl"], 60)) is not None:
                assert job.status == "running" and job.lease_owner == name
                taken.append(job.id)
            return taken

        results = await asyncio.gather(
            *(worker(store, f"w{n}") for n, store in enumerate(stores) for _ in range(2))
        )
        claimed = Counter(job_id for taken in results for job_id in taken)
        assert len(claimed) == 40 and set(claimed.values()) == {1}
        assert sum(1 for taken in results if taken) >= 2  # the work really was shared
        # Nothing is left to take while the leases are live.
        assert await stores[1].claim_next_job("late", ["crawl"], 60) is None
        assert await stores[1].claim_job("job-00", "late", 60) is None
    finally:
        for store in stores:
            await store.close()


_WORKER = """
import asyncio, sys
from confluence_rag.store.postgres import PostgresStore

async def main(url: str) -> None:
    async with PostgresStore(url, max_connections=2) as store:
        job = await store.claim_job("j-kill", "doomed-worker", LEASE)
        assert job is not None
        await store.update_job("j-kill", checkpoint={"finished_spaces": ["DEV"]})
        print("claimed", flush=True)
        while await store.renew_lease("j-kill", "doomed-worker", LEASE):
            await asyncio.sleep(0.2)

LEASE = float(sys.argv[2])
asyncio.run(main(sys.argv[1]))
"""
# 15 heartbeats per lease: a worker paused by a busy machine for a while still renews in time.
KILLED_WORKER_LEASE = 3.0


async def test_job_of_a_sigkilled_worker_is_taken_over(
    pg_store: PostgresStore, pg_database_url: str
) -> None:
    await pg_store.create_job(JobRecord(id="j-kill", source_id=b.SOURCE, kind="crawl"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _WORKER,
        pg_database_url,
        str(KILLED_WORKER_LEASE),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
        assert line.strip() == b"claimed"
        # Until the first lease would have run out: only the heartbeat keeps the job the
        # worker's from then on.
        claimed = await pg_store.get_job("j-kill")
        assert claimed.lease_expires_at is not None
        while datetime.now(UTC) <= claimed.lease_expires_at:
            await asyncio.sleep(0.1)
        assert await pg_store.claim_job("j-kill", "survivor", 30) is None
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    deadline = time.monotonic() + 60
    while (job := await pg_store.claim_job("j-kill", "survivor", 30)) is None:
        assert time.monotonic() < deadline, "the dead worker's lease never lapsed"
        await asyncio.sleep(0.2)
    assert job.lease_owner == "survivor" and job.status == "running"
    assert dict(job.checkpoint) == {"finished_spaces": ["DEV"]}
