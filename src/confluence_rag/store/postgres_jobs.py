"""Job leases on PostgreSQL: several worker processes share one queue safely.

A worker takes a job with one conditional UPDATE whose target row was picked with
``FOR UPDATE SKIP LOCKED``: two workers asking at the same moment lock different rows (or one
gets nothing), so a job is never claimed twice. A claim sets ``lease_owner`` and
``lease_expires_at``; the owner renews the lease with its heartbeat (``renew_lease`` fails once
another worker took the job over). A job whose lease ran out (its worker died, or hung) can be
claimed again and resumes from its checkpoint.

Lease times use the database clock (``now()``), so workers on machines with skewed clocks
still agree on when a lease has expired.
"""

from __future__ import annotations

from collections.abc import Sequence

from confluence_rag.records import JobRecord
from confluence_rag.store.postgres_rows import POSTGRES, Conn, fetchone
from confluence_rag.store.rows import job_from_row
from confluence_rag.store.validation import check_lease


# A job another worker may take: queued, or running with a lapsed lease; never one whose
# cancel was requested (the runner finishes those as cancelled).
def _claimable(alias: str) -> str:
    return (
        f"NOT {alias}.cancel_requested AND ({alias}.status = 'queued' OR "
        f"({alias}.status = 'running' AND ({alias}.lease_expires_at IS NULL OR "
        f"{alias}.lease_expires_at < now())))"
    )


_TAKE = (
    "UPDATE jobs SET status = 'running', lease_owner = %s, "
    "lease_expires_at = now() + make_interval(secs => %s), heartbeat_at = now(), "
    "started_at = coalesce(started_at, now()), finished_at = NULL, updated_at = now() "
)


async def claim_job(
    conn: Conn, job_id: str, worker_id: str, lease_seconds: float
) -> JobRecord | None:
    """Take this job if it is claimable; ``None`` if it is finished, cancelled, or leased by a
    live worker (or being claimed by another one right now)."""
    check_lease(worker_id, lease_seconds)
    row = await fetchone(
        conn,
        _TAKE + "WHERE id = (SELECT j.id FROM jobs j WHERE j.id = %s AND "
        f"{_claimable('j')} FOR UPDATE SKIP LOCKED) RETURNING *",
        (worker_id, float(lease_seconds), job_id),
    )
    return job_from_row(row, POSTGRES) if row else None


async def claim_next_job(
    conn: Conn, worker_id: str, kinds: Sequence[str], lease_seconds: float
) -> JobRecord | None:
    """Take the oldest claimable job of one of ``kinds``; ``None`` when there is none."""
    check_lease(worker_id, lease_seconds)
    if not kinds:
        return None
    row = await fetchone(
        conn,
        _TAKE + "WHERE id = (SELECT j.id FROM jobs j WHERE j.kind = ANY(%s) AND "
        f"{_claimable('j')} ORDER BY j.created_at, j.id LIMIT 1 "
        "FOR UPDATE OF j SKIP LOCKED) RETURNING *",
        (worker_id, float(lease_seconds), list(kinds)),
    )
    return job_from_row(row, POSTGRES) if row else None


async def renew_lease(conn: Conn, job_id: str, worker_id: str, lease_seconds: float) -> bool:
    """Extend this worker's lease (the heartbeat). ``False``: the job is no longer this
    worker's (finished, or taken over after the lease lapsed), so it must stop working on it."""
    check_lease(worker_id, lease_seconds)
    cur = await conn.execute(
        "UPDATE jobs SET heartbeat_at = now(), lease_expires_at = now() + "
        "make_interval(secs => %s), updated_at = now() WHERE id = %s AND lease_owner = %s "
        "AND status = 'running'",
        (float(lease_seconds), job_id, worker_id),
    )
    return cur.rowcount == 1
