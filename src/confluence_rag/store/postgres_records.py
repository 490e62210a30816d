"""Sources, credentials, jobs and index identity on PostgreSQL: the bookkeeping tables.

Functions take an open connection inside a transaction (``PostgresStore`` owns transactions).
Column names in the SQL come from the record dataclasses, never from callers: ``update_*``
check the field names against ``SOURCE_UPDATABLE`` / ``JOB_UPDATABLE`` first, and every value
is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from datetime import UTC, datetime
from typing import Any, get_args

from psycopg import AsyncConnection, sql

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
from confluence_rag.store.postgres_rows import (
    job_from_row,
    job_value,
    source_from_row,
    source_value,
)
from confluence_rag.store.postgres_schema import set_dimension_sql

Conn = AsyncConnection[Any]

_SYNC_STATUSES = set(get_args(SyncStatus))
_JOB_STATUSES = set(get_args(JobStatus))


def _now() -> datetime:
    return datetime.now(UTC)


async def fetchone(conn: Conn, query: Any, params: Any = ()) -> dict[str, Any] | None:
    cur = await conn.execute(query, params)
    row: dict[str, Any] | None = await cur.fetchone()
    return row


async def fetchall(conn: Conn, query: Any, params: Any = ()) -> list[dict[str, Any]]:
    cur = await conn.execute(query, params)
    rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


# --- index identity -------------------------------------------------------------------------
async def get_index_model(conn: Conn) -> IndexModel | None:
    row = await fetchone(conn, "SELECT model_id, dimension FROM index_meta WHERE id = 1")
    if row is None or row["model_id"] is None:
        return None
    return IndexModel(model_id=row["model_id"], dimension=int(row["dimension"]))


async def ensure_index_model(conn: Conn, model_id: str, dimension: int, location: str) -> None:
    """Record the model (sizing the vector column and building its HNSW index), or check it.
    An index with no chunks may switch models."""
    if not model_id or dimension < 1:
        raise InvalidInput(f"invalid embedding model {model_id!r} / dimension {dimension}")
    # Serialise concurrent first calls (two workers starting at once): the row lock is held
    # until this transaction ends.
    row = await fetchone(conn, "SELECT model_id, dimension FROM index_meta WHERE id = 1 FOR UPDATE")
    if row is not None and row["model_id"] is not None:
        current = IndexModel(row["model_id"], int(row["dimension"]))
        if (current.model_id, current.dimension) == (model_id, dimension):
            return
        if await fetchone(conn, "SELECT 1 FROM chunks LIMIT 1") is not None:
            raise IndexModelMismatch(
                f"this index was built with the embedding model {current.model_id!r} "
                f"({current.dimension} dimensions), but the configured model is {model_id!r} "
                f"({dimension} dimensions); vectors of different models cannot be compared. "
                f"Configure {current.model_id!r} again (CONFLUENCE_RAG_EMBEDDER and its "
                f"settings), or rebuild: delete the sources (or drop the database at "
                f"{location}) and crawl again with the new model.",
                details={
                    "index_model": current.model_id,
                    "index_dimension": current.dimension,
                    "configured_model": model_id,
                    "configured_dimension": dimension,
                },
            )
        same_dimension = current.dimension == dimension
    else:
        same_dimension = False
    if not same_dimension:
        for statement in set_dimension_sql(dimension):
            await conn.execute(statement)  # DDL built from a checked int
    await conn.execute(
        "UPDATE index_meta SET model_id = %s, dimension = %s, generation = generation + 1, "
        "updated_at = %s WHERE id = 1",
        (model_id, dimension, _now()),
    )


# --- sources ---------------------------------------------------------------------------------
_SOURCE_COLUMNS = [
    f.name for f in dataclass_fields(SourceRecord) if f.name not in ("page_count", "chunk_count")
]

SOURCE_SELECT = (
    "SELECT s.*, "
    "(SELECT count(*) FROM pages p WHERE p.source_id = s.id AND NOT p.is_deleted) AS page_count,"
    " (SELECT count(*) FROM chunks c JOIN pages p ON p.id = c.page_id "
    "WHERE p.source_id = s.id AND NOT p.is_deleted) AS chunk_count FROM sources s"
)


def _check_sync_status(value: Any) -> None:
    if value not in _SYNC_STATUSES:
        raise InvalidInput(
            f"sync_status must be one of {sorted(_SYNC_STATUSES)}, got {value!r}",
            details={"field": "sync_status"},
        )


def _insert(table: str, values: Mapping[str, Any]) -> sql.Composed:
    return sql.SQL("INSERT INTO {} ({}) VALUES ({}) ON CONFLICT DO NOTHING").format(
        sql.Identifier(table),
        sql.SQL(", ").join(sql.Identifier(name) for name in values),
        sql.SQL(", ").join(sql.Placeholder() for _ in values),
    )


def _assignments(values: Mapping[str, Any]) -> sql.Composed:
    return sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in values)


async def create_source(conn: Conn, source: SourceRecord) -> None:
    if not source.id or not source.id.strip():
        raise InvalidInput("a source needs a non-empty id", details={"field": "id"})
    _check_sync_status(source.sync_status)
    now = _now()
    values = {name: getattr(source, name) for name in _SOURCE_COLUMNS}
    values["created_at"] = values["created_at"] or now
    values["updated_at"] = now
    cur = await conn.execute(
        _insert("sources", values), [source_value(n, v) for n, v in values.items()]
    )
    if cur.rowcount == 0:
        raise Conflict(f"source {source.id} already exists", details={"source_id": source.id})


async def get_source(conn: Conn, source_id: str) -> SourceRecord:
    row = await fetchone(conn, SOURCE_SELECT + " WHERE s.id = %s", (source_id,))
    if row is None:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})
    return source_from_row(row)


async def list_sources(conn: Conn) -> list[SourceRecord]:
    rows = await fetchall(conn, SOURCE_SELECT + " ORDER BY s.created_at, s.id")
    return [source_from_row(row) for row in rows]


async def require_source(conn: Conn, source_id: str, *, lock: bool = False) -> None:
    """``SourceNotFound`` unless the source exists; ``lock`` holds it against a concurrent
    delete until the transaction ends (KEY SHARE: ``update_source`` is not blocked)."""
    query = "SELECT 1 FROM sources WHERE id = %s" + (" FOR KEY SHARE" if lock else "")
    if await fetchone(conn, query, (source_id,)) is None:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})


async def update_source(conn: Conn, source_id: str, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - SOURCE_UPDATABLE
    if unknown:
        raise InvalidInput(
            f"cannot update source fields {sorted(unknown)}",
            details={"fields": sorted(unknown)},
        )
    if "sync_status" in changes:
        _check_sync_status(changes["sync_status"])
    values = {name: source_value(name, value) for name, value in changes.items()}
    values["updated_at"] = _now()
    query = sql.SQL("UPDATE sources SET {} WHERE id = %s").format(_assignments(values))
    cur = await conn.execute(query, [*values.values(), source_id])
    if cur.rowcount == 0:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})


async def put_credentials(conn: Conn, source_id: str, ciphertext: bytes) -> None:
    if not isinstance(ciphertext, bytes | bytearray) or not ciphertext:
        raise InvalidInput("credentials must be non-empty encrypted bytes")
    await require_source(conn, source_id, lock=True)
    await conn.execute(
        "INSERT INTO credentials (source_id, ciphertext, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (source_id) DO UPDATE SET ciphertext = excluded.ciphertext, "
        "updated_at = excluded.updated_at",
        (source_id, bytes(ciphertext), _now()),
    )


async def get_credentials(conn: Conn, source_id: str) -> bytes:
    row = await fetchone(
        conn, "SELECT ciphertext FROM credentials WHERE source_id = %s", (source_id,)
    )
    if row is None:
        await require_source(conn, source_id)
        raise NotFound(
            f"source {source_id} has no stored credentials", details={"source_id": source_id}
        )
    return bytes(row["ciphertext"])


# --- jobs ------------------------------------------------------------------------------------
_JOB_COLUMNS = [f.name for f in dataclass_fields(JobRecord)]


def _check_job_status(value: Any) -> None:
    if value not in _JOB_STATUSES:
        raise InvalidInput(
            f"job status must be one of {sorted(_JOB_STATUSES)}, got {value!r}",
            details={"field": "status"},
        )


async def create_job(conn: Conn, job: JobRecord) -> None:
    if not job.id:
        raise InvalidInput("a job needs a non-empty id")
    _check_job_status(job.status)
    now = _now()
    values = {name: getattr(job, name) for name in _JOB_COLUMNS}
    values["created_at"] = values["created_at"] or now
    values["updated_at"] = now
    cur = await conn.execute(_insert("jobs", values), [job_value(n, v) for n, v in values.items()])
    if cur.rowcount == 0:
        raise Conflict(f"job {job.id} already exists", details={"job_id": job.id})


async def get_job(conn: Conn, job_id: str) -> JobRecord:
    row = await fetchone(conn, "SELECT * FROM jobs WHERE id = %s", (job_id,))
    if row is None:
        raise JobNotFound(f"no job {job_id!r}", details={"job_id": job_id})
    return job_from_row(row)


async def update_job(conn: Conn, job_id: str, changes: Mapping[str, Any]) -> None:
    unknown = set(changes) - JOB_UPDATABLE
    if unknown:
        raise InvalidInput(
            f"cannot update job fields {sorted(unknown)}", details={"fields": sorted(unknown)}
        )
    if "status" in changes:
        _check_job_status(changes["status"])
    values = {name: job_value(name, value) for name, value in changes.items()}
    values["updated_at"] = _now()
    query = sql.SQL("UPDATE jobs SET {} WHERE id = %s").format(_assignments(values))
    cur = await conn.execute(query, [*values.values(), job_id])
    if cur.rowcount == 0:
        raise JobNotFound(f"no job {job_id!r}", details={"job_id": job_id})


async def list_jobs(
    conn: Conn, active_only: bool, source_id: str | None, limit: int
) -> list[JobRecord]:
    clauses: list[str] = []
    params: list[Any] = []
    if active_only:
        clauses.append("status = ANY(%s)")
        params.append(list(ACTIVE_JOB_STATUSES))
    if source_id is not None:
        clauses.append("source_id = %s")
        params.append(source_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = await fetchall(
        conn,
        f"SELECT * FROM jobs {where} ORDER BY created_at DESC, id LIMIT %s",
        [*params, limit],
    )
    return [job_from_row(row) for row in rows]


async def cancel_active_jobs(conn: Conn, source_id: str, reason: str) -> int:
    now = _now()
    cur = await conn.execute(
        "UPDATE jobs SET status = 'cancelled', stage = 'cancelled', cancel_requested = true, "
        "finished_at = %s, updated_at = %s, error = coalesce(error, %s) "
        "WHERE source_id = %s AND status = ANY(%s)",
        (now, now, reason, source_id, list(ACTIVE_JOB_STATUSES)),
    )
    return cur.rowcount
