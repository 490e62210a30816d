"""Store contract: jobs (every backend)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from confluence_rag.errors import Conflict, InvalidInput, JobNotFound
from confluence_rag.records import JobRecord
from confluence_rag.store import Store

pytestmark = pytest.mark.anyio

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def job(job_id: str, source_id: str = "s:A", status: str = "queued", minutes: int = 0) -> JobRecord:
    return JobRecord(
        id=job_id,
        source_id=source_id,
        kind="crawl",
        status=status,
        log=["queued"],
        created_at=T0 + timedelta(minutes=minutes),
    )


async def test_job_round_trip_and_updates(store: Store) -> None:
    await store.create_job(job("j1"))
    got = await store.get_job("j1")
    assert (got.status, got.stage, got.percent, got.log, got.cancel_requested) == (
        "queued",
        "queued",
        0.0,
        ["queued"],
        False,
    )
    assert got.created_at == T0
    beat = T0 + timedelta(seconds=5)
    await store.update_job(
        "j1",
        status="running",
        stage="processing",
        percent=42.5,
        counters={"pages_added": 3},
        log=["a", "b"],
        checkpoint={"finished_spaces": {"DEV": {"pages_added": 3}}},
        result={"pages": 3},
        heartbeat_at=beat,
        started_at=T0,
        lease_owner="host:1",
        lease_expires_at=beat + timedelta(seconds=60),
        cancel_requested=True,
        error=None,
    )
    got = await store.get_job("j1")
    assert got.status == "running" and got.percent == 42.5
    assert dict(got.counters) == {"pages_added": 3}
    assert got.log == ["a", "b"]
    assert dict(got.checkpoint) == {"finished_spaces": {"DEV": {"pages_added": 3}}}
    assert dict(got.result) == {"pages": 3}
    assert got.heartbeat_at == beat and got.started_at == T0 and got.cancel_requested
    assert got.lease_owner == "host:1"
    assert got.updated_at is not None


async def test_job_errors(store: Store) -> None:
    await store.create_job(job("j1"))
    with pytest.raises(Conflict):
        await store.create_job(job("j1"))
    with pytest.raises(JobNotFound):
        await store.get_job("missing")
    with pytest.raises(JobNotFound):
        await store.update_job("missing", stage="x")
    with pytest.raises(InvalidInput):
        await store.update_job("j1", source_id="other")
    with pytest.raises(InvalidInput):
        await store.update_job("j1", status="exploded")
    assert (await store.get_job("j1")).status == "queued"


async def test_list_and_running_job(store: Store) -> None:
    await store.create_job(job("old", status="completed", minutes=0))
    await store.create_job(job("run", status="running", minutes=1))
    await store.create_job(job("other", source_id="s:B", status="queued", minutes=2))
    assert [j.id for j in await store.list_jobs()] == ["other", "run"]
    assert [j.id for j in await store.list_jobs(active_only=False)] == ["other", "run", "old"]
    assert [j.id for j in await store.list_jobs(active_only=False, source_id="s:A")] == [
        "run",
        "old",
    ]
    running = await store.running_job_for_source("s:A")
    assert running is not None and running.id == "run"
    await store.update_job("run", status="failed", error="boom", finished_at=T0)
    assert await store.running_job_for_source("s:A") is None
    assert (await store.get_job("run")).error == "boom"
