"""Page write transactions on PostgreSQL (each function runs inside one transaction).

Unlike SQLite there is no separate full-text table or in-memory matrix to keep in step: the
``tsv`` columns are generated and the HNSW index is maintained by PostgreSQL, and every search
joins ``pages`` for ``NOT is_deleted``. So a soft delete is one UPDATE and a restore another.

Concurrency: a page row is locked (``FOR UPDATE``) for the whole rewrite, so two writers of the
same page serialise and a reader always sees either the old or the new set of chunks (readers
are never blocked: MVCC).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.errors import StoreError
from confluence_rag.index.models import Chunk
from confluence_rag.records import WriteResult
from confluence_rag.store import bookkeeping
from confluence_rag.store.page_plan import ExistingPage, OldChunk, PageColumns, plan_page_write
from confluence_rag.store.postgres_rows import POSTGRES, Conn, fetchall, fetchone, run_plan
from confluence_rag.store.validation import check_dimension
from confluence_rag.store.values import normalise_labels, utc


async def _lock_or_create_page(
    conn: Conn, source_id: str, document: Document, columns: PageColumns, now: datetime
) -> tuple[ExistingPage | None, int]:
    """``(existing page or None, page id)`` with the page row locked for this transaction."""
    select = (
        f"SELECT {ExistingPage.COLUMNS} FROM pages "
        "WHERE source_id = %s AND confluence_page_id = %s FOR UPDATE"
    )
    existing = await fetchone(conn, select, (source_id, document.page_id))
    if existing is not None:
        return ExistingPage.from_row(existing, POSTGRES), int(existing["id"])
    marks = ", ".join("%s" for _ in PageColumns.names())
    row = await fetchone(
        conn,
        f"INSERT INTO pages (source_id, confluence_page_id, {', '.join(PageColumns.names())}, "
        f"confluence_version, is_deleted, deleted_at, indexed_at) VALUES (%s, %s, {marks}, "
        "%s, false, NULL, %s) ON CONFLICT (source_id, confluence_page_id) DO NOTHING RETURNING id",
        (source_id, document.page_id, *columns.values(), document.version, now),
    )
    if row is not None:
        return None, int(row["id"])
    # Another transaction inserted it between our SELECT and INSERT: now it exists, lock it.
    existing = await fetchone(conn, select, (source_id, document.page_id))
    if existing is None:  # it was inserted and deleted again meanwhile: let the caller retry
        raise StoreError(f"page {document.page_id} changed concurrently; write it again")
    return ExistingPage.from_row(existing, POSTGRES), int(existing["id"])


async def write_page(
    conn: Conn,
    source_id: str,
    document: Document,
    chunks: Sequence[Chunk],
    matrix: np.ndarray,
    now: datetime,
) -> WriteResult:
    await run_plan(conn, bookkeeping.require_source(POSTGRES, source_id, lock=True))
    model = await run_plan(conn, bookkeeping.get_index_model(POSTGRES))
    check_dimension(model.dimension if model else None, matrix)
    labels = normalise_labels(document.labels)
    columns = PageColumns.of(document, POSTGRES)
    existing, page_id = await _lock_or_create_page(conn, source_id, document, columns, now)
    old_chunks = (
        [
            OldChunk.from_row(row, POSTGRES)
            for row in await fetchall(
                conn,
                f"SELECT {OldChunk.COLUMNS} FROM chunks WHERE page_id = %s ORDER BY ordinal",
                (page_id,),
            )
        ]
        if existing is not None
        else []
    )
    plan = plan_page_write(source_id, existing, old_chunks, document, chunks)

    if plan.action == "refresh":
        assignments = ", ".join(f"{name}=%s" for name in PageColumns.names(title=False))
        await conn.execute(
            f"UPDATE pages SET {assignments}, indexed_at=%s WHERE id=%s",
            (*columns.values(title=False), now, page_id),
        )
        await _replace_labels(conn, page_id, labels)
        row = await fetchone(
            conn, "SELECT count(*) AS n FROM code_examples WHERE page_id = %s", (page_id,)
        )
        return plan.result(page_id=page_id, code_examples=int(row["n"]) if row else 0)

    if plan.action == "rewrite":
        assignments = ", ".join(f"{name}=%s" for name in PageColumns.names())
        await conn.execute(
            f"UPDATE pages SET {assignments}, confluence_version=%s, is_deleted=false, "
            "deleted_at=NULL, indexed_at=%s WHERE id=%s",
            (*columns.values(), document.version, now, page_id),
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
                    POSTGRES.to_json(list(chunk.heading_path)),
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
                    POSTGRES.to_json(list(block.heading_path)),
                    block.title or "",
                    document.title,
                )
                for ordinal, block in enumerate(document.code_blocks)
            ],
        )
    return plan.result(page_id=page_id, code_examples=len(document.code_blocks))


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
    await run_plan(conn, bookkeeping.require_source(POSTGRES, source_id, lock=True))
    ids = list(dict.fromkeys(str(p) for p in confluence_page_ids))
    if not ids:
        return 0
    cur = await conn.execute(
        "UPDATE pages SET is_deleted = true, deleted_at = %s WHERE source_id = %s "
        "AND NOT is_deleted AND confluence_page_id = ANY(%s)",
        (utc(when), source_id, ids),
    )
    return cur.rowcount


async def restore_pages(conn: Conn, source_id: str, confluence_page_ids: Sequence[str]) -> int:
    await run_plan(conn, bookkeeping.require_source(POSTGRES, source_id, lock=True))
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
