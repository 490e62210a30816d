"""Python values <-> SQLite column values, and rows -> records. Pure, no connections.

Times are stored as fixed-width UTC ISO-8601 text (``2026-11-25T21:31:24.123456+00:00``) so
text order is time order; a naive datetime is taken as UTC. JSON columns hold compact JSON.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from confluence_rag.records import (
    JOB_JSON,
    JOB_TIMES,
    SOURCE_JSON,
    SOURCE_TIMES,
    ChunkRow,
    CodeRow,
    JobRecord,
    PageRecord,
    SourceRecord,
    page_key,
)


def db_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def py_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def db_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return db_time(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def py_json(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def db_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def py_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def normalise_labels(labels: Any) -> tuple[str, ...]:
    """Labels as stored and filtered: stripped, lower case, distinct, in order."""
    out = dict.fromkeys(str(label).strip().lower() for label in labels or ())
    out.pop("", None)
    return tuple(out)


# --- sources ------------------------------------------------------------------------------


def source_value(name: str, value: Any) -> Any:
    """One SourceRecord field as its column value."""
    if name in SOURCE_JSON:
        return db_json(value)
    if name in SOURCE_TIMES:
        return db_time(value)
    if name == "paused":
        return int(bool(value))
    return value


def source_from_row(row: sqlite3.Row) -> SourceRecord:
    keys = row.keys()
    return SourceRecord(
        id=row["id"],
        title=row["title"],
        site_url=row["site_url"],
        flavour=row["flavour"],
        space_keys=tuple(py_json(row["space_keys"], [])),
        space_names=dict(py_json(row["space_names"], {})),
        user_email=row["user_email"],
        auth_kind=row["auth_kind"],
        knowledge_type=row["knowledge_type"],
        tags=tuple(py_json(row["tags"], [])),
        page_types=tuple(py_json(row["page_types"], [])),
        skip_rules=dict(py_json(row["skip_rules"], {})),
        max_pages=row["max_pages"],
        sync_frequency_hours=float(row["sync_frequency_hours"]),
        paused=bool(row["paused"]),
        last_sync_at=py_time(row["last_sync_at"]),
        sync_status=row["sync_status"],
        sync_error=row["sync_error"],
        created_at=py_time(row["created_at"]),
        updated_at=py_time(row["updated_at"]),
        page_count=int(row["page_count"]) if "page_count" in keys else 0,
        chunk_count=int(row["chunk_count"]) if "chunk_count" in keys else 0,
    )


# --- pages --------------------------------------------------------------------------------
def page_from_row(row: sqlite3.Row) -> PageRecord:
    keys = row.keys()
    return PageRecord(
        id=int(row["id"]),
        key=page_key(row["source_id"], row["confluence_page_id"]),
        source_id=row["source_id"],
        confluence_page_id=row["confluence_page_id"],
        space_key=row["space_key"],
        type=row["type"],
        status=row["status"],
        title=row["title"],
        version=int(row["confluence_version"]),
        url=row["url"],
        breadcrumb=row["breadcrumb"],
        ancestors=tuple((str(a), str(b)) for a, b in py_json(row["ancestors"], [])),
        labels=tuple(py_json(row["labels"], [])),
        author=row["author"],
        created_at=py_time(row["created_at"]),
        updated_at=py_time(row["updated_at"]),
        markdown=row["markdown"] if "markdown" in keys else None,
        is_deleted=bool(row["is_deleted"]),
        deleted_at=py_time(row["deleted_at"]),
        indexed_at=py_time(row["indexed_at"]),
        chunk_count=int(row["chunk_count"]) if "chunk_count" in keys else 0,
        code_count=int(row["code_count"]) if "code_count" in keys else 0,
    )


CHUNK_COLUMNS = (
    "c.id AS chunk_id, c.page_id, c.ordinal, c.heading_path, c.text, c.content_hash, "
    "c.token_count, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, "
    "p.title, p.url, p.breadcrumb, p.labels, p.updated_at"
)


def chunk_from_row(row: sqlite3.Row) -> ChunkRow:
    return ChunkRow(
        chunk_id=int(row["chunk_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        heading_path=tuple(py_json(row["heading_path"], [])),
        text=row["text"],
        content_hash=row["content_hash"],
        token_count=int(row["token_count"]),
        source_id=row["source_id"],
        confluence_page_id=row["confluence_page_id"],
        space_key=row["space_key"],
        page_type=row["page_type"],
        title=row["title"],
        url=row["url"],
        breadcrumb=row["breadcrumb"],
        labels=tuple(py_json(row["labels"], [])),
        updated_at=py_time(row["updated_at"]),
    )


CODE_COLUMNS = (
    "e.id AS code_id, e.page_id, e.ordinal, e.language, e.code, e.line_count, e.heading_path, "
    "e.caption, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, p.title, "
    "p.url, p.breadcrumb"
)


def code_from_row(row: sqlite3.Row) -> CodeRow:
    return CodeRow(
        code_id=int(row["code_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        language=row["language"],
        code=row["code"],
        line_count=int(row["line_count"]),
        heading_path=tuple(py_json(row["heading_path"], [])),
        caption=row["caption"],
        source_id=row["source_id"],
        confluence_page_id=row["confluence_page_id"],
        space_key=row["space_key"],
        page_type=row["page_type"],
        title=row["title"],
        url=row["url"],
        breadcrumb=row["breadcrumb"],
    )


# --- jobs ---------------------------------------------------------------------------------


def job_value(name: str, value: Any) -> Any:
    if name in JOB_JSON:
        return db_json(value if value is not None else ([] if name == "log" else {}))
    if name in JOB_TIMES:
        return db_time(value)
    if name == "cancel_requested":
        return int(bool(value))
    if name == "percent":
        return float(value or 0.0)
    return value


def job_from_row(row: sqlite3.Row) -> JobRecord:
    return JobRecord(
        id=row["id"],
        source_id=row["source_id"],
        kind=row["kind"],
        status=row["status"],
        stage=row["stage"],
        percent=float(row["percent"]),
        counters=dict(py_json(row["counters"], {})),
        log=list(py_json(row["log"], [])),
        error=row["error"],
        checkpoint=dict(py_json(row["checkpoint"], {})),
        result=dict(py_json(row["result"], {})),
        cancel_requested=bool(row["cancel_requested"]),
        created_at=py_time(row["created_at"]),
        started_at=py_time(row["started_at"]),
        finished_at=py_time(row["finished_at"]),
        heartbeat_at=py_time(row["heartbeat_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=py_time(row["lease_expires_at"]),
        updated_at=py_time(row["updated_at"]),
    )
