"""Page write transactions (run on the writer thread, inside BEGIN IMMEDIATE).

Invariant kept by every function here: ``chunks_fts`` / ``code_fts`` hold rows for the chunks and
code examples of LIVE pages only, and every change to which chunks are live bumps the generation
and returns a ``VectorDelta`` for the in-memory matrix.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.index.models import Chunk
from confluence_rag.records import WriteResult
from confluence_rag.store import bookkeeping
from confluence_rag.store.page_plan import ExistingPage, OldChunk, PageColumns, plan_page_write
from confluence_rag.store.sqlite_rows import (
    SQLITE,
    db_json,
    db_vector,
    marks,
    py_json,
    py_vector,
    run_plan,
)
from confluence_rag.store.sqlite_vectors import VectorDelta, bump_generation
from confluence_rag.store.validation import check_dimension
from confluence_rag.store.values import batched, iso_time, normalise_labels

HEADING_SEPARATOR = " > "


def require_source(conn: sqlite3.Connection, source_id: str) -> None:
    run_plan(conn, bookkeeping.require_source(SQLITE, source_id))


def write_page(
    conn: sqlite3.Connection,
    source_id: str,
    document: Document,
    chunks: Sequence[Chunk],
    matrix: np.ndarray,
    now: datetime,
) -> tuple[WriteResult, VectorDelta | None]:
    require_source(conn, source_id)
    model = run_plan(conn, bookkeeping.get_index_model(SQLITE))
    check_dimension(model.dimension if model else None, matrix)
    columns = PageColumns.of(document, SQLITE)
    row = conn.execute(
        f"SELECT {ExistingPage.COLUMNS} FROM pages WHERE source_id = ? AND confluence_page_id = ?",
        (source_id, document.page_id),
    ).fetchone()
    existing = ExistingPage.from_row(row, SQLITE) if row is not None else None
    old_chunks = (
        [
            OldChunk.from_row(old, SQLITE)
            for old in conn.execute(
                f"SELECT {OldChunk.COLUMNS} FROM chunks WHERE page_id = ? ORDER BY ordinal",
                (existing.id,),
            )
        ]
        if existing is not None
        else []
    )
    plan = plan_page_write(source_id, existing, old_chunks, document, chunks)

    if existing is not None and plan.action == "refresh":
        # Leave chunks, vectors and FTS rows alone; refresh what changes without a version.
        assignments = ", ".join(f"{name}=?" for name in PageColumns.names(title=False))
        conn.execute(
            f"UPDATE pages SET {assignments}, indexed_at=? WHERE id=?",
            (*columns.values(title=False), iso_time(now), existing.id),
        )
        _replace_labels(conn, existing.id, normalise_labels(document.labels))
        code_count = conn.execute(
            "SELECT count(*) FROM code_examples WHERE page_id = ?", (existing.id,)
        ).fetchone()[0]
        if plan.filters_changed:
            bump_generation(conn)  # allowed-page caches are keyed on the generation
        return plan.result(page_id=existing.id, code_examples=int(code_count)), None

    old_gen, new_gen = bump_generation(conn)
    if existing is None:
        names = ", ".join(PageColumns.names())
        cursor = conn.execute(
            f"INSERT INTO pages (source_id, confluence_page_id, {names}, confluence_version, "
            "is_deleted, deleted_at, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
            (source_id, document.page_id, *columns.values(), document.version, iso_time(now)),
        )
        page_id = int(cursor.lastrowid or 0)
    else:
        page_id = existing.id
        assignments = ", ".join(f"{name}=?" for name in PageColumns.names())
        conn.execute(
            f"UPDATE pages SET {assignments}, confluence_version=?, is_deleted=0, "
            "deleted_at=NULL, indexed_at=? WHERE id=?",
            (*columns.values(), document.version, iso_time(now), page_id),
        )
    _drop_page_content(conn, [page_id])
    _replace_labels(conn, page_id, normalise_labels(document.labels))

    heading_text = [HEADING_SEPARATOR.join(chunk.heading_path) for chunk in chunks]
    new_ids: list[int] = []
    for chunk, vector in zip(chunks, matrix, strict=True):
        cursor = conn.execute(
            "INSERT INTO chunks (page_id, ordinal, heading_path, text, content_hash, "
            "token_count, embedding, gen) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                page_id,
                chunk.ordinal,
                db_json(list(chunk.heading_path)),
                chunk.text,
                chunk.content_hash,
                chunk.token_count,
                db_vector(vector),
                new_gen,
            ),
        )
        new_ids.append(int(cursor.lastrowid or 0))
    conn.executemany(
        "INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, ?, ?, ?)",
        [
            (chunk_id, document.title, heading, chunk.text)
            for chunk_id, heading, chunk in zip(new_ids, heading_text, chunks, strict=True)
        ],
    )
    for ordinal, block in enumerate(document.code_blocks):
        cursor = conn.execute(
            "INSERT INTO code_examples (page_id, ordinal, language, code, line_count, "
            "heading_path, caption) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                page_id,
                ordinal,
                (block.language or "").strip().lower(),
                block.code,
                block.line_count,
                db_json(list(block.heading_path)),
                block.title or "",
            ),
        )
        conn.execute(
            "INSERT INTO code_fts (rowid, code, context) VALUES (?, ?, ?)",
            (
                cursor.lastrowid,
                block.code,
                code_context(document.title, block.heading_path, block.title, block.language),
            ),
        )

    delta = VectorDelta(
        old_gen=old_gen,
        new_gen=new_gen,
        remove_ids=[old.id for old in old_chunks],
        add_ids=new_ids,
        add_pages=[page_id] * len(new_ids),
        add_vectors=list(matrix),
    )
    return plan.result(page_id=page_id, code_examples=len(document.code_blocks)), delta


def code_context(title: str, heading_path: Sequence[str], caption: str, language: str) -> str:
    """What code search matches besides the code: page title, heading path, caption, language."""
    parts = [title, HEADING_SEPARATOR.join(heading_path), caption, language]
    return "\n".join(part for part in parts if part)


def _replace_labels(conn: sqlite3.Connection, page_id: int, labels: Iterable[str]) -> None:
    conn.execute("DELETE FROM page_labels WHERE page_id = ?", (page_id,))
    conn.executemany(
        "INSERT INTO page_labels (page_id, label) VALUES (?, ?)",
        [(page_id, label) for label in labels],
    )


def _drop_page_content(conn: sqlite3.Connection, page_ids: Sequence[int]) -> None:
    """Delete chunks, code examples and their FTS rows of these pages."""
    for batch in batched(page_ids):
        m = marks(len(batch))
        conn.execute(
            f"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE page_id IN ({m}))",
            batch,
        )
        conn.execute(
            "DELETE FROM code_fts WHERE rowid IN "
            f"(SELECT id FROM code_examples WHERE page_id IN ({m}))",
            batch,
        )
        conn.execute(f"DELETE FROM chunks WHERE page_id IN ({m})", batch)
        conn.execute(f"DELETE FROM code_examples WHERE page_id IN ({m})", batch)


def _drop_fts_rows(conn: sqlite3.Connection, page_ids: Sequence[int]) -> None:
    for batch in batched(page_ids):
        m = marks(len(batch))
        conn.execute(
            f"DELETE FROM chunks_fts WHERE rowid IN (SELECT id FROM chunks WHERE page_id IN ({m}))",
            batch,
        )
        conn.execute(
            "DELETE FROM code_fts WHERE rowid IN "
            f"(SELECT id FROM code_examples WHERE page_id IN ({m}))",
            batch,
        )


def _page_ids(
    conn: sqlite3.Connection, source_id: str, confluence_page_ids: Sequence[str], deleted: bool
) -> list[int]:
    found: list[int] = []
    for batch in batched(list(dict.fromkeys(str(p) for p in confluence_page_ids))):
        rows = conn.execute(
            f"SELECT id FROM pages WHERE source_id = ? AND is_deleted = ? "
            f"AND confluence_page_id IN ({marks(len(batch))})",
            [source_id, int(deleted), *batch],
        )
        found.extend(int(row[0]) for row in rows)
    return found


def soft_delete_pages(
    conn: sqlite3.Connection, source_id: str, confluence_page_ids: Sequence[str], when: datetime
) -> tuple[int, VectorDelta | None]:
    require_source(conn, source_id)
    page_ids = _page_ids(conn, source_id, confluence_page_ids, deleted=False)
    if not page_ids:
        return 0, None
    old_gen, new_gen = bump_generation(conn)
    _drop_fts_rows(conn, page_ids)
    for batch in batched(page_ids):
        conn.execute(
            f"UPDATE pages SET is_deleted = 1, deleted_at = ? WHERE id IN ({marks(len(batch))})",
            [iso_time(when), *batch],
        )
    return len(page_ids), VectorDelta(old_gen, new_gen, remove_pages=page_ids)


def restore_pages(
    conn: sqlite3.Connection, source_id: str, confluence_page_ids: Sequence[str]
) -> tuple[int, VectorDelta | None]:
    require_source(conn, source_id)
    page_ids = _page_ids(conn, source_id, confluence_page_ids, deleted=True)
    if not page_ids:
        return 0, None
    old_gen, new_gen = bump_generation(conn)
    delta = VectorDelta(old_gen, new_gen)
    for batch in batched(page_ids):
        m = marks(len(batch))
        conn.execute(f"UPDATE pages SET is_deleted = 0, deleted_at = NULL WHERE id IN ({m})", batch)
        conn.execute(f"UPDATE chunks SET gen = ? WHERE page_id IN ({m})", [new_gen, *batch])
        fts_rows = []
        for row in conn.execute(
            "SELECT c.id, c.page_id, c.heading_path, c.text, c.embedding, p.title "
            f"FROM chunks c JOIN pages p ON p.id = c.page_id WHERE c.page_id IN ({m})",
            batch,
        ):
            heading = HEADING_SEPARATOR.join(py_json(row["heading_path"], []))
            fts_rows.append((row["id"], row["title"], heading, row["text"]))
            delta.add_ids.append(int(row["id"]))
            delta.add_pages.append(int(row["page_id"]))
            delta.add_vectors.append(py_vector(row["embedding"]))
        conn.executemany(
            "INSERT INTO chunks_fts (rowid, title, heading, text) VALUES (?, ?, ?, ?)", fts_rows
        )
        conn.executemany(
            "INSERT INTO code_fts (rowid, code, context) VALUES (?, ?, ?)",
            [
                (
                    row["id"],
                    row["code"],
                    code_context(
                        row["title"],
                        py_json(row["heading_path"], []),
                        row["caption"],
                        row["language"],
                    ),
                )
                for row in conn.execute(
                    "SELECT e.id, e.code, e.heading_path, e.caption, e.language, p.title "
                    "FROM code_examples e JOIN pages p ON p.id = e.page_id "
                    f"WHERE e.page_id IN ({m})",
                    batch,
                )
            ],
        )
    return len(page_ids), delta


def delete_pages_batch(conn: sqlite3.Connection, page_ids: Sequence[int]) -> int:
    """Physically remove pages (cascades to chunks, code examples, labels) with FTS rows."""
    if not page_ids:
        return 0
    _drop_fts_rows(conn, page_ids)
    removed = 0
    for batch in batched(page_ids):
        cursor = conn.execute(f"DELETE FROM pages WHERE id IN ({marks(len(batch))})", batch)
        removed += cursor.rowcount
    return removed
