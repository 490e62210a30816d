"""Sources, credentials, jobs, skipped pages and index identity: the bookkeeping tables, once
for both backends.

Every function is a *plan* (see ``dialect``): it yields its statements and the backend's
executor runs them inside the backend's transaction (SQLite: on the writer or a reader thread;
PostgreSQL: one pooled connection). The logic around the statements (validation, the errors,
what an empty result means) is therefore the same on both, and so are the messages.

Column names in the SQL come from the record dataclasses, never from callers: ``update_*``
check the field names against ``SOURCE_UPDATABLE`` / ``JOB_UPDATABLE`` first, and every value
is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields as dataclass_fields
from typing import Any

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
    JOB_JSON,
    JOB_TIMES,
    JOB_UPDATABLE,
    SOURCE_JSON,
    SOURCE_TIMES,
    SOURCE_UPDATABLE,
    IndexModel,
    JobRecord,
    SourceRecord,
)
from confluence_rag.store.dialect import Dialect, Plan, Query
from confluence_rag.store.rows import job_from_row, source_from_row
from confluence_rag.store.validation import (
    check_fields,
    check_index_model,
    check_job_values,
    check_source_values,
)
from confluence_rag.store.values import batched, now

_SOURCE_COLUMNS = [
    f.name for f in dataclass_fields(SourceRecord) if f.name not in ("page_count", "chunk_count")
]
_JOB_COLUMNS = [f.name for f in dataclass_fields(JobRecord)]
_EMPTY_JSON: Mapping[str, Any] = {
    "space_names": {},
    "skip_rules": {},
    "counters": {},
    "checkpoint": {},
    "result": {},
}


def _one(sql: str, params: Sequence[Any] = ()) -> Query:
    return Query(sql, params, returns="one")


def _all(sql: str, params: Sequence[Any] = ()) -> Query:
    return Query(sql, params, returns="all")


def _json_value(d: Dialect, name: str, value: Any) -> Any:
    return d.to_json(value if value is not None else _EMPTY_JSON.get(name, []))


def source_value(d: Dialect, name: str, value: Any) -> Any:
    """One SourceRecord field as its column value."""
    if name in SOURCE_JSON:
        return _json_value(d, name, value)
    if name in SOURCE_TIMES:
        return d.to_time(value)
    if name == "paused":
        return d.to_bool(value)
    return value


def job_value(d: Dialect, name: str, value: Any) -> Any:
    """One JobRecord field as its column value."""
    if name in JOB_JSON:
        return _json_value(d, name, value)
    if name in JOB_TIMES:
        return d.to_time(value)
    if name == "cancel_requested":
        return d.to_bool(value)
    if name == "percent":
        return float(value or 0.0)
    return value


def _insert(table: str, values: Mapping[str, Any]) -> str:
    """An INSERT that adds nothing when the key exists (the caller reads the row count)."""
    marks = ", ".join("?" for _ in values)
    return f"INSERT INTO {table} ({', '.join(values)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


def _update(table: str, values: Mapping[str, Any]) -> str:
    return f"UPDATE {table} SET {', '.join(f'{name} = ?' for name in values)} WHERE id = ?"


# --- index identity -------------------------------------------------------------------------
def get_index_model(d: Dialect, *, lock: bool = False) -> Plan[IndexModel | None]:
    lock_sql = d.update_lock if lock else ""
    row = yield _one(f"SELECT model_id, dimension FROM index_meta WHERE id = 1{lock_sql}")
    if row is None or row["model_id"] is None:
        return None
    return IndexModel(model_id=row["model_id"], dimension=int(row["dimension"]))


def ensure_index_model(d: Dialect, model_id: str, dimension: int, rebuild: str) -> Plan[bool]:
    """Record the model, or check it; True when the recorded model changed (caches of vectors
    must go). An index with no chunks may switch models. ``rebuild`` names what to delete to
    start over (the SQLite file, the PostgreSQL database)."""
    check_index_model(model_id, dimension)
    # The row lock serialises concurrent first calls (two workers starting at once).
    current = yield from get_index_model(d, lock=True)
    if current is not None and (current.model_id, current.dimension) == (model_id, dimension):
        return False
    if current is not None:
        has_chunks = (yield _one("SELECT 1 AS found FROM chunks LIMIT 1")) is not None
        if has_chunks:
            raise _model_mismatch(current, model_id, dimension, rebuild)
    if current is None or current.dimension != dimension:
        for statement in d.resize_vectors(dimension):
            yield Query(statement)
    yield Query(
        "UPDATE index_meta SET model_id = ?, dimension = ?, generation = generation + 1, "
        "updated_at = ? WHERE id = 1",
        (model_id, dimension, d.to_time(now())),
    )
    return True


def _model_mismatch(
    current: IndexModel, model_id: str, dimension: int, rebuild: str
) -> IndexModelMismatch:
    return IndexModelMismatch(
        f"this index was built with the embedding model {current.model_id!r} "
        f"({current.dimension} dimensions), but the configured model is {model_id!r} "
        f"({dimension} dimensions); vectors of different models cannot be compared. "
        f"Configure {current.model_id!r} again (CONFLUENCE_RAG_EMBEDDER and its "
        f"settings), or rebuild: delete the sources (or {rebuild}) and crawl again with "
        "the new model.",
        details={
            "index_model": current.model_id,
            "index_dimension": current.dimension,
            "configured_model": model_id,
            "configured_dimension": dimension,
        },
    )


# --- sources ---------------------------------------------------------------------------------
def _source_select(d: Dialect, counts: bool = True) -> str:
    if not counts:
        return "SELECT s.* FROM sources s"
    return (
        "SELECT s.*, (SELECT count(*) FROM pages p WHERE p.source_id = s.id AND "
        f"{d.live('p')}) AS page_count, (SELECT count(*) FROM chunks c JOIN pages p ON "
        f"p.id = c.page_id WHERE p.source_id = s.id AND {d.live('p')}) AS chunk_count "
        "FROM sources s"
    )


def _no_source(source_id: str) -> SourceNotFound:
    return SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})


def require_source(d: Dialect, source_id: str, *, lock: bool = False) -> Plan[None]:
    """``SourceNotFound`` unless the source exists; ``lock`` holds it against a concurrent
    delete until the transaction ends (KEY SHARE: ``update_source`` is not blocked)."""
    lock_sql = d.key_share_lock if lock else ""
    if (yield _one(f"SELECT 1 AS found FROM sources WHERE id = ?{lock_sql}", (source_id,))) is None:
        raise _no_source(source_id)


def create_source(d: Dialect, source: SourceRecord) -> Plan[None]:
    values = {name: getattr(source, name) for name in _SOURCE_COLUMNS}
    check_source_values(values)
    values["created_at"] = values["created_at"] or now()
    values["updated_at"] = now()
    params = [source_value(d, name, value) for name, value in values.items()]
    if (yield Query(_insert("sources", values), params)) == 0:
        raise Conflict(f"source {source.id} already exists", details={"source_id": source.id})


def get_source(d: Dialect, source_id: str) -> Plan[SourceRecord]:
    row = yield _one(f"{_source_select(d)} WHERE s.id = ?", (source_id,))
    if row is None:
        raise _no_source(source_id)
    return source_from_row(row, d)


def list_sources(d: Dialect, counts: bool = True) -> Plan[list[SourceRecord]]:
    rows = yield _all(f"{_source_select(d, counts)} ORDER BY s.created_at, s.id")
    return [source_from_row(row, d) for row in rows]


def update_source(d: Dialect, source_id: str, changes: Mapping[str, Any]) -> Plan[None]:
    check_fields("source", changes, SOURCE_UPDATABLE)
    check_source_values(changes)
    values = {name: source_value(d, name, value) for name, value in changes.items()}
    values["updated_at"] = d.to_time(now())
    if (yield Query(_update("sources", values), [*values.values(), source_id])) == 0:
        raise _no_source(source_id)


def put_credentials(d: Dialect, source_id: str, ciphertext: bytes) -> Plan[None]:
    if not isinstance(ciphertext, bytes | bytearray) or not ciphertext:
        raise InvalidInput("credentials must be non-empty encrypted bytes")
    yield from require_source(d, source_id, lock=True)
    yield Query(
        "INSERT INTO credentials (source_id, ciphertext, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (source_id) DO UPDATE SET ciphertext = excluded.ciphertext, "
        "updated_at = excluded.updated_at",
        (source_id, bytes(ciphertext), d.to_time(now())),
    )


def get_credentials(d: Dialect, source_id: str) -> Plan[bytes]:
    row = yield _one("SELECT ciphertext FROM credentials WHERE source_id = ?", (source_id,))
    if row is None:
        yield from require_source(d, source_id)
        raise NotFound(
            f"source {source_id} has no stored credentials", details={"source_id": source_id}
        )
    return bytes(row["ciphertext"])


# --- skipped pages ---------------------------------------------------------------------------
def skipped_versions(d: Dialect, source_id: str) -> Plan[dict[str, tuple[int, str]]]:
    yield from require_source(d, source_id)
    rows = yield _all(
        "SELECT confluence_page_id, confluence_version, rules FROM skipped_pages "
        "WHERE source_id = ?",
        (source_id,),
    )
    return {
        row["confluence_page_id"]: (int(row["confluence_version"]), row["rules"]) for row in rows
    }


def record_skipped(
    d: Dialect, source_id: str, confluence_page_id: str, version: int, rules: str, reason: str
) -> Plan[None]:
    yield from require_source(d, source_id, lock=True)
    yield Query(
        "INSERT INTO skipped_pages (source_id, confluence_page_id, confluence_version, rules, "
        "reason, skipped_at) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (source_id, confluence_page_id) DO UPDATE SET "
        "confluence_version = excluded.confluence_version, rules = excluded.rules, "
        "reason = excluded.reason, skipped_at = excluded.skipped_at",
        (source_id, confluence_page_id, int(version), rules, reason, d.to_time(now())),
    )


def forget_skipped(d: Dialect, source_id: str, confluence_page_ids: Sequence[str]) -> Plan[int]:
    forgotten = 0
    for batch in batched(list(confluence_page_ids)):
        match, params = d.in_list("confluence_page_id", batch)
        forgotten += yield Query(
            f"DELETE FROM skipped_pages WHERE source_id = ? AND {match}", [source_id, *params]
        )
    return forgotten


# --- jobs ------------------------------------------------------------------------------------
def _no_job(job_id: str) -> JobNotFound:
    return JobNotFound(f"no job {job_id!r}", details={"job_id": job_id})


def create_job(d: Dialect, job: JobRecord) -> Plan[None]:
    values = {name: getattr(job, name) for name in _JOB_COLUMNS}
    check_job_values(values)
    values["created_at"] = values["created_at"] or now()
    values["updated_at"] = now()
    params = [job_value(d, name, value) for name, value in values.items()]
    if (yield Query(_insert("jobs", values), params)) == 0:
        raise Conflict(f"job {job.id} already exists", details={"job_id": job.id})


def get_job(d: Dialect, job_id: str) -> Plan[JobRecord]:
    row = yield _one("SELECT * FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        raise _no_job(job_id)
    return job_from_row(row, d)


def update_job(d: Dialect, job_id: str, changes: Mapping[str, Any]) -> Plan[None]:
    check_fields("job", changes, JOB_UPDATABLE)
    check_job_values(changes)
    values = {name: job_value(d, name, value) for name, value in changes.items()}
    values["updated_at"] = d.to_time(now())
    if (yield Query(_update("jobs", values), [*values.values(), job_id])) == 0:
        raise _no_job(job_id)


def list_jobs(
    d: Dialect, active_only: bool, source_id: str | None, limit: int
) -> Plan[list[JobRecord]]:
    clauses: list[str] = []
    params: list[Any] = []
    if active_only:
        match, values = d.in_list("status", ACTIVE_JOB_STATUSES)
        clauses.append(match)
        params.extend(values)
    if source_id is not None:
        clauses.append("source_id = ?")
        params.append(source_id)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = yield _all(
        f"SELECT * FROM jobs {where} ORDER BY created_at DESC, id LIMIT ?", [*params, limit]
    )
    return [job_from_row(row, d) for row in rows]


def cancel_active_jobs(d: Dialect, source_id: str, reason: str) -> Plan[int]:
    when = d.to_time(now())
    match, statuses = d.in_list("status", ACTIVE_JOB_STATUSES)
    count: int = yield Query(
        f"UPDATE jobs SET status = 'cancelled', stage = 'cancelled', cancel_requested = {d.true}, "
        "finished_at = ?, updated_at = ?, error = coalesce(error, ?) "
        f"WHERE source_id = ? AND {match}",
        [when, when, reason, source_id, *statuses],
    )
    return count
