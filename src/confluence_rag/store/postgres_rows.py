"""Python values <-> PostgreSQL values, rows -> records, and the pgvector adapter for psycopg.

Rows are dicts (``psycopg.rows.dict_row``). JSONB columns come back already parsed and
timestamps as aware datetimes; we normalise every time to UTC both ways, so a naive datetime is
taken as UTC (as on SQLite) whatever the session's TimeZone is.

Vectors travel in pgvector's binary format (uint16 dimension, uint16 unused, big-endian
float32s), which is far cheaper than the text form for 384+ floats per chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

from confluence_rag.errors import StoreError
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
from confluence_rag.store.sqlite_rows import db_time, normalise_labels

__all__ = ["normalise_labels"]


# --- vectors ----------------------------------------------------------------------------------
class _VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        array = np.ascontiguousarray(obj, dtype=">f4").reshape(-1)
        return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        (dim,) = struct.unpack_from(">H", data)
        return np.frombuffer(bytes(data), dtype=">f4", count=dim, offset=4).astype(np.float32)


class _VectorTextLoader(Loader):
    format = Format.TEXT

    def load(self, data: Buffer) -> np.ndarray:
        text = bytes(data).strip()[1:-1]
        return np.array(text.split(b",") if text else [], dtype=np.float32)


async def register_vector(conn: AsyncConnection[Any]) -> None:
    """Teach this connection to send numpy arrays as ``vector`` and read ``vector`` as numpy."""
    info = await TypeInfo.fetch(conn, "vector")
    if info is None:
        raise StoreError(
            "the PostgreSQL database has no 'vector' type: install pgvector and run "
            "CREATE EXTENSION vector (managed services: enable the 'vector' extension)"
        )
    dumper = type("VectorDumper", (_VectorBinaryDumper,), {"oid": info.oid})
    conn.adapters.register_dumper(np.ndarray, dumper)
    conn.adapters.register_loader(info.oid, _VectorBinaryLoader)
    conn.adapters.register_loader(info.oid, _VectorTextLoader)


# --- scalars ----------------------------------------------------------------------------------
def pg_time(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _json_ready(value: Any) -> Any:
    if isinstance(value, datetime):
        return db_time(value)  # the same text SQLite stores, so JSON reads back alike
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_ready(v) for v in value]
    return value


def pg_json(value: Any) -> Jsonb:
    return Jsonb(_json_ready(value))


def source_value(name: str, value: Any) -> Any:
    if name in SOURCE_JSON:
        empty: Any = {} if name in ("space_names", "skip_rules") else []
        return pg_json(value if value is not None else empty)
    if name in SOURCE_TIMES:
        return pg_time(value)
    if name == "paused":
        return bool(value)
    return value


def job_value(name: str, value: Any) -> Any:
    if name in JOB_JSON:
        return pg_json(value if value is not None else ([] if name == "log" else {}))
    if name in JOB_TIMES:
        return pg_time(value)
    if name == "cancel_requested":
        return bool(value)
    if name == "percent":
        return float(value or 0.0)
    return value


# --- rows -> records --------------------------------------------------------------------------
def source_from_row(row: Mapping[str, Any]) -> SourceRecord:
    return SourceRecord(
        id=row["id"],
        title=row["title"],
        site_url=row["site_url"],
        flavour=row["flavour"],
        space_keys=tuple(row["space_keys"] or ()),
        space_names=dict(row["space_names"] or {}),
        user_email=row["user_email"],
        auth_kind=row["auth_kind"],
        knowledge_type=row["knowledge_type"],
        tags=tuple(row["tags"] or ()),
        page_types=tuple(row["page_types"] or ()),
        skip_rules=dict(row["skip_rules"] or {}),
        max_pages=row["max_pages"],
        sync_frequency_hours=float(row["sync_frequency_hours"]),
        paused=bool(row["paused"]),
        last_sync_at=pg_time(row["last_sync_at"]),
        sync_status=row["sync_status"],
        sync_error=row["sync_error"],
        created_at=pg_time(row["created_at"]),
        updated_at=pg_time(row["updated_at"]),
        page_count=int(row.get("page_count") or 0),
        chunk_count=int(row.get("chunk_count") or 0),
    )


def page_from_row(row: Mapping[str, Any]) -> PageRecord:
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
        ancestors=tuple((str(a), str(b)) for a, b in row["ancestors"] or ()),
        labels=tuple(row["labels"] or ()),
        author=row["author"],
        created_at=pg_time(row["created_at"]),
        updated_at=pg_time(row["updated_at"]),
        markdown=row.get("markdown"),
        is_deleted=bool(row["is_deleted"]),
        deleted_at=pg_time(row["deleted_at"]),
        indexed_at=pg_time(row["indexed_at"]),
        chunk_count=int(row.get("chunk_count") or 0),
        code_count=int(row.get("code_count") or 0),
    )


CHUNK_COLUMNS = (
    "c.id AS chunk_id, c.page_id, c.ordinal, c.heading_path, c.text, c.content_hash, "
    "c.token_count, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, "
    "p.title, p.url, p.breadcrumb, p.labels, p.updated_at"
)


def chunk_from_row(row: Mapping[str, Any]) -> ChunkRow:
    return ChunkRow(
        chunk_id=int(row["chunk_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        heading_path=tuple(row["heading_path"] or ()),
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
        labels=tuple(row["labels"] or ()),
        updated_at=pg_time(row["updated_at"]),
    )


CODE_COLUMNS = (
    "e.id AS code_id, e.page_id, e.ordinal, e.language, e.code, e.line_count, e.heading_path, "
    "e.caption, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, p.title, "
    "p.url, p.breadcrumb"
)


def code_from_row(row: Mapping[str, Any]) -> CodeRow:
    return CodeRow(
        code_id=int(row["code_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        language=row["language"],
        code=row["code"],
        line_count=int(row["line_count"]),
        heading_path=tuple(row["heading_path"] or ()),
        caption=row["caption"],
        source_id=row["source_id"],
        confluence_page_id=row["confluence_page_id"],
        space_key=row["space_key"],
        page_type=row["page_type"],
        title=row["title"],
        url=row["url"],
        breadcrumb=row["breadcrumb"],
    )


def job_from_row(row: Mapping[str, Any]) -> JobRecord:
    return JobRecord(
        id=row["id"],
        source_id=row["source_id"],
        kind=row["kind"],
        status=row["status"],
        stage=row["stage"],
        percent=float(row["percent"]),
        counters=dict(row["counters"] or {}),
        log=list(row["log"] or []),
        error=row["error"],
        checkpoint=dict(row["checkpoint"] or {}),
        result=dict(row["result"] or {}),
        cancel_requested=bool(row["cancel_requested"]),
        created_at=pg_time(row["created_at"]),
        started_at=pg_time(row["started_at"]),
        finished_at=pg_time(row["finished_at"]),
        heartbeat_at=pg_time(row["heartbeat_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=pg_time(row["lease_expires_at"]),
        updated_at=pg_time(row["updated_at"]),
    )
