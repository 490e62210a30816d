"""Rows -> records, once for both backends; the ``Dialect`` decodes JSON and time columns.

A row is whatever the driver returns with access by column name: ``sqlite3.Row`` or psycopg's
dict row. Columns a query may leave out (counts, ``markdown`` in listings) read as empty.
"""

from __future__ import annotations

from typing import Any, Protocol

from confluence_rag.records import ChunkRow, CodeRow, JobRecord, PageRecord, SourceRecord, page_key
from confluence_rag.store.dialect import Dialect


class Row(Protocol):
    def __getitem__(self, key: str, /) -> Any: ...

    def keys(self) -> Any: ...


def _optional(row: Row, name: str) -> Any:
    return row[name] if name in row.keys() else None


def _count(row: Row, name: str) -> int:
    return int(_optional(row, name) or 0)


#: Per-page counts, as extra columns of a ``pages p`` query.
PAGE_COUNTS = (
    "(SELECT count(*) FROM chunks c WHERE c.page_id = p.id) AS chunk_count, "
    "(SELECT count(*) FROM code_examples e WHERE e.page_id = p.id) AS code_count"
)
#: Page columns of a listing: everything but the Markdown.
PAGE_LIST_COLUMNS = (
    "p.id, p.source_id, p.confluence_page_id, p.space_key, p.type, p.status, p.title, "
    "p.confluence_version, p.url, p.breadcrumb, p.ancestors, p.labels, p.author, p.created_at, "
    "p.updated_at, p.is_deleted, p.deleted_at, p.indexed_at"
)
CHUNK_COLUMNS = (
    "c.id AS chunk_id, c.page_id, c.ordinal, c.heading_path, c.text, c.content_hash, "
    "c.token_count, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, "
    "p.title, p.url, p.breadcrumb, p.labels, p.updated_at, p.author"
)
CODE_COLUMNS = (
    "e.id AS code_id, e.page_id, e.ordinal, e.language, e.code, e.line_count, e.heading_path, "
    "e.caption, p.source_id, p.confluence_page_id, p.space_key, p.type AS page_type, p.title, "
    "p.url, p.breadcrumb"
)


def source_from_row(row: Row, d: Dialect) -> SourceRecord:
    return SourceRecord(
        id=row["id"],
        title=row["title"],
        site_url=row["site_url"],
        flavour=row["flavour"],
        space_keys=tuple(d.from_json(row["space_keys"], [])),
        space_names=dict(d.from_json(row["space_names"], {})),
        user_email=row["user_email"],
        auth_kind=row["auth_kind"],
        knowledge_type=row["knowledge_type"],
        tags=tuple(d.from_json(row["tags"], [])),
        page_types=tuple(d.from_json(row["page_types"], [])),
        skip_rules=dict(d.from_json(row["skip_rules"], {})),
        max_pages=row["max_pages"],
        sync_frequency_hours=float(row["sync_frequency_hours"]),
        paused=bool(row["paused"]),
        last_sync_at=d.from_time(row["last_sync_at"]),
        sync_status=row["sync_status"],
        sync_error=row["sync_error"],
        created_at=d.from_time(row["created_at"]),
        updated_at=d.from_time(row["updated_at"]),
        page_count=_count(row, "page_count"),
        chunk_count=_count(row, "chunk_count"),
    )


def page_from_row(row: Row, d: Dialect) -> PageRecord:
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
        ancestors=tuple((str(a), str(b)) for a, b in d.from_json(row["ancestors"], [])),
        labels=tuple(d.from_json(row["labels"], [])),
        author=row["author"],
        created_at=d.from_time(row["created_at"]),
        updated_at=d.from_time(row["updated_at"]),
        markdown=_optional(row, "markdown"),
        is_deleted=bool(row["is_deleted"]),
        deleted_at=d.from_time(row["deleted_at"]),
        indexed_at=d.from_time(row["indexed_at"]),
        chunk_count=_count(row, "chunk_count"),
        code_count=_count(row, "code_count"),
    )


def chunk_from_row(row: Row, d: Dialect) -> ChunkRow:
    return ChunkRow(
        chunk_id=int(row["chunk_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        heading_path=tuple(d.from_json(row["heading_path"], [])),
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
        labels=tuple(d.from_json(row["labels"], [])),
        updated_at=d.from_time(row["updated_at"]),
        author=row["author"],
    )


def code_from_row(row: Row, d: Dialect) -> CodeRow:
    return CodeRow(
        code_id=int(row["code_id"]),
        page_id=int(row["page_id"]),
        page_key=page_key(row["source_id"], row["confluence_page_id"]),
        ordinal=int(row["ordinal"]),
        language=row["language"],
        code=row["code"],
        line_count=int(row["line_count"]),
        heading_path=tuple(d.from_json(row["heading_path"], [])),
        caption=row["caption"],
        source_id=row["source_id"],
        confluence_page_id=row["confluence_page_id"],
        space_key=row["space_key"],
        page_type=row["page_type"],
        title=row["title"],
        url=row["url"],
        breadcrumb=row["breadcrumb"],
    )


def job_from_row(row: Row, d: Dialect) -> JobRecord:
    return JobRecord(
        id=row["id"],
        source_id=row["source_id"],
        kind=row["kind"],
        status=row["status"],
        stage=row["stage"],
        percent=float(row["percent"]),
        counters=dict(d.from_json(row["counters"], {})),
        log=list(d.from_json(row["log"], [])),
        error=row["error"],
        checkpoint=dict(d.from_json(row["checkpoint"], {})),
        result=dict(d.from_json(row["result"], {})),
        cancel_requested=bool(row["cancel_requested"]),
        created_at=d.from_time(row["created_at"]),
        started_at=d.from_time(row["started_at"]),
        finished_at=d.from_time(row["finished_at"]),
        heartbeat_at=d.from_time(row["heartbeat_at"]),
        lease_owner=row["lease_owner"],
        lease_expires_at=d.from_time(row["lease_expires_at"]),
        updated_at=d.from_time(row["updated_at"]),
    )
