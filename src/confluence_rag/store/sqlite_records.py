"""Sources, credentials, jobs and index identity on SQLite: the bookkeeping tables.

Functions take a connection: write ones run on the writer thread inside a transaction, read
ones on a reader thread.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, get_args

from confluence_rag.errors import (
    Conflict,
    IndexModelMismatch,
    InvalidInput,
    JobNotFound,
    NotFound,
    SourceNotFound,
)
from confluence_rag.records import (
    ACTIVE_JOB_STATUSES,
    JOB_UPDATABLE,
    SOURCE_UPDATABLE,
    IndexModel,
    JobRecord,
    JobStatus,
    SourceRecord,
    SyncStatus,
)
from confluence_rag.store.sqlite_rows import (
    db_time,
    job_from_row,
    job_value,
    source_from_row,
    source_value,
)
from confluence_rag.store.sqlite_vectors import bump_generation

_SYNC_STATUSES = set(get_args(SyncStatus))
_JOB_STATUSES = set(get_args(JobStatus))


def _now() -> datetime:
    return datetime.now(UTC)


# --- index identity -------------------------------------------------------------------------
def get_index_model(conn: sqlite3.Connection) -> IndexModel | None:
    row = conn.execute("SELECT model_id, dimension FROM index_meta WHERE id = 1").fetchone()
    if row is None or row["model_id"] is None:
        return None
    return IndexModel(model_id=row["model_id"], dimension=int(row["dimension"]))


def ensure_index_model(
    conn: sqlite3.Connection, model_id: str, dimension: int, location: str
) -> bool:
    """Record the model, or check it. Returns True when the recorded model changed (the
    in-memory matrix must be dropped). An index with no chunks may switch models."""
    if not model_id or dimension < 1:
        raise InvalidInput(f"invalid embedding model {model_id!r} / dimension {dimension}")
    current = get_index_model(conn)
    if current is not None and (current.model_id, current.dimension) == (model_id, dimension):
        return False
    if current is not None:
        has_chunks = conn.execute("SELECT 1 FROM chunks LIMIT 1").fetchone() is not None
        if has_chunks:
            raise IndexModelMismatch(
                f"this index was built with the embedding model {current.model_id!r} "
                f"({current.dimension} dimensions), but the configured model is {model_id!r} "
                f"({dimension} dimensions); vectors of different models cannot be compared. "
                f"Configure {current.model_id!r} again (CONFLUENCE_RAG_EMBEDDER and its "
                f"settings), or rebuild: delete the sources (or the index at {location}) and "
                f"crawl again with the new model.",
                details={
                    "index_model": current.model_id,
                    "index_dimension": current.dimension,
                    "configured_model": model_id,
                    "configured_dimension": dimension,
                },
            )
    conn.execute(
        "UPDATE index_meta SET model_id = ?, dimension = ?, updated_at = ? WHERE id = 1",
        (model_id, dimension, db_time(_now())),
    )
    bump_generation(conn)
    return True


# --- sources ---------------------------------------------------------------------------------
_SOURCE_COLUMNS = [
    f.name for f in dataclass_fields(SourceRecord) if f.name not in ("page_count", "chunk_count")
]

_SOURCE_SELECT = (
    "SELECT s.*, "
    "(SELECT count(*) FROM pages p WHERE p.source_id = s.id AND p.is_deleted = 0) AS page_count,"
    " (SELECT count(*) FROM chunks c JOIN pages p ON p.id = c.page_id "
    "WHERE p.source_id = s.id AND p.is_deleted = 0) AS chunk_count FROM sources s"
)


def _check_sync_status(value: Any) -> None:
    if value not in _SYNC_STATUSES:
        raise InvalidInput(
            f"sync_status must be one of {sorted(_SYNC_STATUSES)}, got {value!r}",
            details={"field": "sync_status"},
        )


def create_source(conn: sqlite3.Connection, source: SourceRecord) -> None:
    if not source.id or not source.id.strip():
        raise InvalidInput("a source needs a non-empty id", details={"field": "id"})
    _check_sync_status(source.sync_status)
    if conn.execute("SELECT 1 FROM sources WHERE id = ?", (source.id,)).fetchone():
        raise Conflict(f"source {source.id} already exists", details={"source_id": source.id})
    now = _now()
    values = {name: getattr(source, name) for name in _SOURCE_COLUMNS}
    values["created_at"] = values["created_at"] or now
    values["updated_at"] = now
    conn.execute(
        f"INSERT INTO sources ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        [source_value(name, value) for name, value in values.items()],
    )


def get_source(conn: sqlite3.Connection, source_id: str) -> SourceRecord:
    row = conn.execute(f"{_SOURCE_SELECT} WHERE s.id = ?", (source_id,)).fetchone()
    if row is None:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})
    return source_from_row(row)


def list_sources(conn: sqlite3.Connection) -> list[SourceRecord]:
    rows = conn.execute(f"{_SOURCE_SELECT} ORDER BY s.created_at, s.id").fetchall()
    return [source_from_row(row) for row in rows]


def update_source(conn: sqlite3.Connection, source_id: str, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - SOURCE_UPDATABLE
    if unknown:
        raise InvalidInput(
            f"cannot update source fields {sorted(unknown)}",
            details={"fields": sorted(unknown)},
        )
    if "sync_status" in changes:
        _check_sync_status(changes["sync_status"])
    values = {name: source_value(name, value) for name, value in changes.items()}
    values["updated_at"] = db_time(_now())
    assignments = ", ".join(f"{name} = ?" for name in values)
    cursor = conn.execute(
        f"UPDATE sources SET {assignments} WHERE id = ?", [*values.values(), source_id]
    )
    if cursor.rowcount == 0:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})


def put_credentials(conn: sqlite3.Connection, source_id: str, ciphertext: bytes) -> None:
    if not isinstance(ciphertext, bytes | bytearray) or not ciphertext:
        raise InvalidInput("credentials must be non-empty encrypted bytes")
    if conn.execute("SELECT 1 FROM sources WHERE id = ?", (source_id,)).fetchone() is None:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})
    conn.execute(
        "INSERT INTO credentials (source_id, ciphertext, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (source_id) DO UPDATE SET ciphertext = excluded.ciphertext, "
        "updated_at = excluded.updated_at",
        (source_id, bytes(ciphertext), db_time(_now())),
    )


def get_credentials(conn: sqlite3.Connection, source_id: str) -> bytes:
    row = conn.execute(
        "SELECT ciphertext FROM credentials WHERE source_id = ?", (source_id,)
    ).fetchone()
    if row is None:
        get_source(conn, source_id)  # SourceNotFound when the source itself is missing
        raise NotFound(
            f"source {source_id} has no stored credentials", details={"source_id": source_id}
        )
    return bytes(row[0])


# --- jobs ------------------------------------------------------------------------------------
_JOB_COLUMNS = [f.name for f in dataclass_fields(JobRecord)]


def _check_job_status(value: Any) -> None:
    if value not in _JOB_STATUSES:
        raise InvalidInput(
            f"job status must be one of {sorted(_JOB_STATUSES)}, got {value!r}",
            details={"field": "status"},
        )


def create_job(conn: sqlite3.Connection, job: JobRecord) -> None:
    if not job.id:
        raise InvalidInput("a job needs a non-empty id")
    _check_job_status(job.status)
    if conn.execute("SELECT 1 FROM jobs WHERE id = ?", (job.id,)).fetchone():
        raise Conflict(f"job {job.id} already exists", details={"job_id": job.id})
    now = _now()
    values = {name: getattr(job, name) for name in _JOB_COLUMNS}
    values["created_at"] = values["created_at"] or now
    values["updated_at"] = now
    conn.execute(
        f"INSERT INTO jobs ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        [job_value(name, value) for name, value in values.items()],
    )


def get_job(conn: sqlite3.Connection, job_id: str) -> JobRecord:
    row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(f"no job {job_id!r}", details={"job_id": job_id})
    return job_from_row(row)


def update_job(conn: sqlite3.Connection, job_id: str, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - JOB_UPDATABLE
    if unknown:
        raise InvalidInput(
            f"cannot update job fields {sorted(unknown)}", details={"fields": sorted(unknown)}
        )
    if "status" in changes:
        _check_job_status(changes["status"])
    values = {name: job_value(name, value) for name, value in changes.items()}
    values["updated_at"] = db_time(_now())
    assignments = ", ".join(f"{name} = ?" for name in values)
    cursor = conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*values.values(), job_id])
    if cursor.rowcount == 0:
        raise JobNotFound(f"no job {job_id!r}", details={"job_id": job_id})


def list_jobs(
    conn: sqlite3.Connection, active_only: bool, source_id: str | None, limit: int
) -> list[JobRecord]:
    clauses: list[str] = []
    params: list[Any] = []
    if active_only:
        clauses.append(f"status IN ({', '.join('?' * len(ACTIVE_JOB_STATUSES))})")
        params.extend(ACTIVE_JOB_STATUSES)
    if source_id is not None:
        clauses.append("source_id = ?")
        params.append(source_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = conn.execute(
        f"SELECT * FROM jobs {where} ORDER BY created_at DESC, id LIMIT ?", [*params, limit]
    ).fetchall()
    return [job_from_row(row) for row in rows]


def cancel_active_jobs(conn: sqlite3.Connection, source_id: str, reason: str) -> int:
    now = db_time(_now())
    cursor = conn.execute(
        "UPDATE jobs SET status = 'cancelled', stage = 'cancelled', cancel_requested = 1, "
        "finished_at = ?, updated_at = ?, error = coalesce(error, ?) "
        f"WHERE source_id = ? AND status IN ({', '.join('?' * len(ACTIVE_JOB_STATUSES))})",
        [now, now, reason, source_id, *ACTIVE_JOB_STATUSES],
    )
    return cursor.rowcount
