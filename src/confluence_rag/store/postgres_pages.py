"""Page write transactions on PostgreSQL (each function runs inside one transaction).

Unlike SQLite there is no separate full-text table or in-memory matrix to keep in step: the
``tsv`` columns are generated and the HNSW index is maintained by PostgreSQL, and every search
joins ``pages`` for ``NOT is_deleted``. So a soft delete is one UPDATE and a restore another.

Concurrency: a page row is locked (``FOR UPDATE``) for the whole rewrite, so two writers of the
same page serialise and a reader always sees either the old or the new set of chunks (readers
are never blocked: MVCC).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.errors import IndexModelMismatch, StoreError
from confluence_rag.index.models import Chunk
from confluence_rag.records import WriteResult, page_key
from confluence_rag.store.postgres_records import Conn, fetchall, fetchone, require_source
from confluence_rag.store.postgres_rows import normalise_labels, pg_json, pg_time

_PAGE_FIELDS = (
    "title, space_key, type, status, url, breadcrumb, ancestors, labels, author, created_at, "
    "updated_at, markdown"
)


def _page_metadata(document: Document, labels: tuple[str, ...]) -> tuple[Any, ...]:
    """Values in ``_PAGE_FIELDS`` order."""
    return (
        document.title,
        document.space_key,
        document.type,
        document.status,
        document.web_url,
        document.breadcrumb,
        pg_json([list(pair) for pair in document.ancestors]),
        pg_json(list(labels)),
        document.author,
        pg_time(document.created_at),
        pg_time(document.updated_at),
        document.markdown,
    )


async def _lock_or_create_page(
    conn: Conn, source_id: str, document: Document, metadata: tuple[Any, ...], now: datetime
) -> tuple[dict[str, Any] | None, int]:
    """``(existing row or None, page id)`` with the page row locked for this transaction."""
    select = (
        "SELECT id, confluence_version, is_deleted, title FROM pages "
        "WHERE source_id = %s AND confluence_page_id = %s FOR UPDATE"
    )
    existing = await fetchone(conn, select, (source_id, document.page_id))
    if existing is not None:
        return existing, int(existing["id"])
    row = await fetchone(
        conn,
        f"INSERT INTO pages (source_id, confluence_page_id, {_PAGE_FIELDS}, confluence_version, "
        "is_deleted, deleted_at, indexed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, "
        "%s, %s, %s, %s, %s, false, NULL, %s) "
        "ON CONFLICT (source_id, confluence_page_id) DO NOTHING RETURNING id",
        (source_id, document.page_id, *metadata, document.version, now),
    )
    if row is not None:
        return None, int(row["id"])
    # Another transaction inserted it between our SELECT and INSERT: now it exists, lock it.
    existing = await fetchone(conn, select, (source_id, document.page_id))
    if existing is None:  # it was inserted and deleted again meanwhile: let the caller retry
        raise StoreError(f"page {document.page_id} changed concurrently; write it again")
    return existing, int(existing["id"])


async def write_page(
    conn: Conn,
    source_id: str,
    document: Document,
    chunks: Sequence[Chunk],
    matrix: np.ndarray,
    now: datetime,
) -> WriteResult:
    await require_source(conn, source_id, lock=True)
    meta = await fetchone(conn, "SELECT dimension FROM index_meta WHERE id = 1")
    dimension = meta["dimension"] if meta else None
    if dimension is None:
        raise IndexModelMismatch(
            "no embedding model is recorded for this index: call ensure_index_model() before "
            "writing pages"
        )
    if len(chunks) and matrix.shape[1] != dimension:
        raise IndexModelMismatch(
            f"embeddings have {matrix.shape[1]} dimensions but this index holds {dimension}",
            details={"index_dimension": dimension, "got": int(matrix.shape[1])},
        )
    key = page_key(source_id, document.page_id)
    labels = normalise_labels(document.labels)
    metadata = _page_metadata(document, labels)
    existing, page_id = await _lock_or_create_page(conn, source_id, document, metadata, now)
    old_chunks = (
        await fetchall(
            conn,
            "SELECT id, content_hash, heading_path, text FROM chunks "
            "WHERE page_id = %s ORDER BY ordinal",
            (page_id,),
        )
        if existing is not None
        else []
    )
    old_hashes = [row["content_hash"] for row in old_chunks]
    new_hashes = [chunk.content_hash for chunk in chunks]
    reused = sum((Counter(old_hashes) & Counter(new_hashes)).values())

    if (
        existing is not None
        and not existing["is_deleted"]
        and int(existing["confluence_version"]) == document.version
        and existing["title"] == document.title
        and old_hashes == new_hashes
        and all(
            row["text"] == chunk.text and list(row["heading_path"]) == list(chunk.heading_path)
            for row, chunk in zip(old_chunks, chunks, strict=True)
        )
    ):
        # Same version, same content: refresh what can change without a new version.
        await conn.execute(
            "UPDATE pages SET space_key=%s, type=%s, status=%s, url=%s, breadcrumb=%s, "
            "ancestors=%s, labels=%s, author=%s, created_at=%s, updated_at=%s, markdown=%s, "
            "indexed_at=%s WHERE id=%s",
            (*metadata[1:], now, page_id),
        )
        await _replace_labels(conn, page_id, labels)
        row = await fetchone(
            conn, "SELECT count(*) AS n FROM code_examples WHERE page_id = %s", (page_id,)
        )
        code_count = int(row["n"]) if row else 0
        return WriteResult(page_id, key, False, True, False, 0, len(chunks), 0, code_count)

    if existing is not None:
        await conn.execute(
            "UPDATE pages SET title=%s, space_key=%s, type=%s, status=%s, url=%s, "
            "breadcrumb=%s, ancestors=%s, labels=%s, author=%s, created_at=%s, updated_at=%s, "
            "markdown=%s, confluence_version=%s, is_deleted=false, deleted_at=NULL, "
            "indexed_at=%s WHERE id=%s",
            (*metadata, document.version, now, page_id),
        )
        await conn.execute("DELETE FROM chunks WHERE page_id = %s", (page_id,))
        await conn.execute("DELETE FROM code_examples WHERE page_id = %s", (page_id,))
    await _replace_labels(conn, page_id, labels)

    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO chunks (page_id, ordinal, heading_path, text, content_hash, "
            "token_count, embedding, page_title) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    page_id,
                    chunk.ordinal,
                    pg_json(list(chunk.heading_path)),
                    chunk.text,
                    chunk.content_hash,
                    chunk.token_count,
                    vector,
                    document.title,
                )
                for chunk, vector in zip(chunks, matrix, strict=True)
            ],
        )
        await cur.executemany(
            "INSERT INTO code_examples (page_id, ordinal, language, code, line_count, "
            "heading_path, caption, page_title) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    page_id,
                    ordinal,
                    (block.language or "").strip().lower(),
                    block.code,
                    block.line_count,
                    pg_json(list(block.heading_path)),
                    block.title or "",
                    document.title,
                )
                for ordinal, block in enumerate(document.code_blocks)
            ],
        )
    return WriteResult(
        page_id=page_id,
        page_key=key,
        created=existing is None,
        unchanged=False,
        undeleted=bool(existing is not None and existing["is_deleted"]),
        chunks_written=len(chunks),
        chunks_reused=reused,
        chunks_removed=len(old_chunks),
        code_examples=len(document.code_blocks),
    )


async def _replace_labels(conn: Conn, page_id: int, labels: Sequence[str]) -> None:
    await conn.execute("DELETE FROM page_labels WHERE page_id = %s", (page_id,))
    if labels:
        await conn.execute(
            "INSERT INTO page_labels (page_id, label) SELECT %s, unnest(%s::text[])",
            (page_id, list(labels)),
        )


async def soft_delete_pages(
    conn: Conn, source_id: str, confluence_page_ids: Sequence[str], when: datetime
) -> int:
    await require_source(conn, source_id, lock=True)
    ids = list(dict.fromkeys(str(p) for p in confluence_page_ids))
    if not ids:
        return 0
    cur = await conn.execute(
        "UPDATE pages SET is_deleted = true, deleted_at = %s WHERE source_id = %s "
        "AND NOT is_deleted AND confluence_page_id = ANY(%s)",
        (pg_time(when), source_id, ids),
    )
    return cur.rowcount


async def restore_pages(conn: Conn, source_id: str, confluence_page_ids: Sequence[str]) -> int:
    await require_source(conn, source_id, lock=True)
    ids = list(dict.fromkeys(str(p) for p in confluence_page_ids))
    if not ids:
        return 0
    cur = await conn.execute(
        "UPDATE pages SET is_deleted = false, deleted_at = NULL WHERE source_id = %s "
        "AND is_deleted AND confluence_page_id = ANY(%s)",
        (source_id, ids),
    )
    return cur.rowcount


async def delete_pages_batch(conn: Conn, page_ids: Sequence[int]) -> int:
    """Physically remove pages (cascades to chunks, code examples, labels)."""
    cur = await conn.execute("DELETE FROM pages WHERE id = ANY(%s)", (list(page_ids),))
    return cur.rowcount
