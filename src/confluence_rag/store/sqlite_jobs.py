"""Job leases on SQLite: the same claim / renew contract as ``postgres_jobs``.

Each function runs on the store's writer thread inside one ``BEGIN IMMEDIATE`` transaction,
which holds SQLite's single write lock: the read that finds a claimable job and the update that
takes it cannot interleave with another claim, in this process or in another one on the same
file (a CLI crawl next to ``serve``). So a job is never claimed twice here either; SQLite just
has no ``SKIP LOCKED`` because it has only one writer at a time anyway.

Lease times use this machine's clock: every process on one SQLite file is on one machine.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import timedelta

from confluence_rag.records import JobRecord
from confluence_rag.store.rows import job_from_row
from confluence_rag.store.sqlite_rows import SQLITE
from confluence_rag.store.validation import check_lease
from confluence_rag.store.values import iso_time, now

# Queued, or running with a lapsed lease; never a job whose cancel was requested (the runner
# finishes those as cancelled). ``iso_time`` is fixed-width UTC, so text comparison orders times.
_CLAIMABLE = (
    "NOT cancel_requested AND (status = 'queued' OR (status = 'running' AND "
    "(lease_expires_at IS NULL OR lease_expires_at < :now)))"
)

_TAKE = (
    "UPDATE jobs SET status = 'running', lease_owner = :worker, lease_expires_at = :expires, "
    "heartbeat_at = :now, started_at = coalesce(started_at, :now), finished_at = NULL, "
    "updated_at = :now WHERE id = :id RETURNING *"
)


def _times(lease_seconds: float) -> dict[str, str | None]:
    start = now()
    return {
        "now": iso_time(start),
        "expires": iso_time(start + timedelta(seconds=lease_seconds)),
    }


def _take(
    conn: sqlite3.Connection, job_id: str, worker_id: str, times: dict[str, str | None]
) -> JobRecord:
    row = conn.execute(_TAKE, {**times, "worker": worker_id, "id": job_id}).fetchone()
    return job_from_row(row, SQLITE)


def claim_job(
    conn: sqlite3.Connection, job_id: str, worker_id: str, lease_seconds: float
) -> JobRecord | None:
    """Take this job if it is claimable; ``None`` if it is finished, cancelled or leased."""
    check_lease(worker_id, lease_seconds)
    times = _times(lease_seconds)
    found = conn.execute(
        f"SELECT id FROM jobs WHERE id = :id AND {_CLAIMABLE}", {**times, "id": job_id}
    ).fetchone()
    return _take(conn, job_id, worker_id, times) if found else None


def claim_next_job(
    conn: sqlite3.Connection, worker_id: str, kinds: Sequence[str], lease_seconds: float
) -> JobRecord | None:
    """Take the oldest claimable job of one of ``kinds``; ``None`` when there is none."""
    check_lease(worker_id, lease_seconds)
    if not kinds:
        return None
    times = _times(lease_seconds)
    marks = ", ".join(f":k{n}" for n in range(len(kinds)))
    found = conn.execute(
        f"SELECT id FROM jobs WHERE kind IN ({marks}) AND {_CLAIMABLE} "
        "ORDER BY created_at, id LIMIT 1",
        {**times, **{f"k{n}": kind for n, kind in enumerate(kinds)}},
    ).fetchone()
    return _take(conn, str(found[0]), worker_id, times) if found else None


def renew_lease(
    conn: sqlite3.Connection, job_id: str, worker_id: str, lease_seconds: float
) -> bool:
    """Extend this worker's lease; ``False`` once the job is no longer this worker's."""
    check_lease(worker_id, lease_seconds)
    times = _times(lease_seconds)
    cursor = conn.execute(
        "UPDATE jobs SET heartbeat_at = :now, lease_expires_at = :expires, updated_at = :now "
        "WHERE id = :id AND lease_owner = :worker AND status = 'running'",
        {**times, "id": job_id, "worker": worker_id},
    )
    return cursor.rowcount == 1
