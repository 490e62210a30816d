"""Page write transactions (run on the writer thread, inside BEGIN IMMEDIATE).

Invariant kept by every function here: ``chunks_fts`` / ``code_fts`` hold rows for the chunks and
code examples of LIVE pages only, and every change to which chunks are live bumps the generation
and returns a ``VectorDelta`` for the in-memory matrix.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.errors import IndexModelMismatch, InvalidInput, SourceNotFound
from confluence_rag.index.models import Chunk
from confluence_rag.records import WriteResult, page_key
from confluence_rag.store.sqlite_rows import (
    db_json,
    db_time,
    db_vector,
    normalise_labels,
    py_json,
    py_vector,
)
from confluence_rag.store.sqlite_vectors import VectorDelta, bump_generation

# SQLite's default limit on bound parameters is 32766; stay far below for IN (...) lists.
BATCH = 500
HEADING_SEPARATOR = " > "


def batched(items: Sequence[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def marks(n: int) -> str:
    return ",".join("?" * n)


def require_source(conn: sqlite3.Connection, source_id: str) -> None:
    if conn.execute("SELECT 1 FROM sources WHERE id = ?", (source_id,)).fetchone() is None:
        raise SourceNotFound(f"no source {source_id!r}", details={"source_id": source_id})


def as_matrix(embeddings: Sequence[np.ndarray] | np.ndarray, rows: int) -> np.ndarray:
    if isinstance(embeddings, np.ndarray):
        matrix = embeddings
    elif len(embeddings) == 0:
        matrix = np.zeros((0, 0), dtype=np.float32)
    else:
        matrix = np.stack([np.asarray(v) for v in embeddings])
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1 and rows == 0 and matrix.size == 0:
        matrix = matrix.reshape(0, 0)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise InvalidInput(
            f"{rows} chunks need {rows} embeddings, got an array of shape {matrix.shape}"
        )
    if rows and not np.isfinite(matrix).all():
        raise InvalidInput("embeddings contain NaN or infinite values")
    return matrix


def write_page(
    conn: sqlite3.Connection,
    source_id: str,
    document: Document,
    chunks: Sequence[Chunk],
    matrix: np.ndarray,
    now: datetime,
) -> tuple[WriteResult, VectorDelta | None]:
    require_source(conn, source_id)
    dimension = conn.execute("SELECT dimension FROM index_meta WHERE id = 1").fetchone()[0]
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
    existing = conn.execute(
        "SELECT id, confluence_version, is_deleted, title, space_key, type, updated_at, labels "
        "FROM pages WHERE source_id = ? AND confluence_page_id = ?",
        (source_id, document.page_id),
    ).fetchone()
    old_chunks = (
        conn.execute(
            "SELECT id, content_hash, heading_path, text FROM chunks "
            "WHERE page_id = ? ORDER BY ordinal",
            (existing["id"],),
        ).fetchall()
        if existing is not None
        else []
    )
    old_hashes = [row["content_hash"] for row in old_chunks]
    new_hashes = [chunk.content_hash for chunk in chunks]
    reused = sum((Counter(old_hashes) & Counter(new_hashes)).values())
    metadata = _page_metadata(document, labels)

    if (
        existing is not None
        and not existing["is_deleted"]
        and int(existing["confluence_version"]) == document.version
        and existing["title"] == document.title
        and old_hashes == new_hashes
        and _same_chunk_text(old_chunks, chunks)
    ):
        # Same version, same content: refresh what can change without a new version
        # (labels, URL, breadcrumb) and leave chunks, vectors and FTS rows alone.
        page_id = int(existing["id"])
        conn.execute(
            "UPDATE pages SET space_key=?, type=?, status=?, url=?, breadcrumb=?, ancestors=?, "
            "labels=?, author=?, created_at=?, updated_at=?, markdown=?, indexed_at=? "
            "WHERE id=?",
            (*metadata[1:], db_time(now), page_id),
        )
        _replace_labels(conn, page_id, labels)
        code_count = conn.execute(
            "SELECT count(*) FROM code_examples WHERE page_id = ?", (page_id,)
        ).fetchone()[0]
        result = WriteResult(page_id, key, False, True, False, 0, len(chunks), 0, code_count)
        filtered_on = (existing["space_key"], existing["type"], existing["updated_at"])
        if filtered_on != (metadata[1], metadata[2], metadata[10]) or existing["labels"] != db_json(
            list(labels)
        ):
            # What search filters on changed (labels change without a new version): move
            # the generation so caches keyed on it (allowed-page sets) are rebuilt.
            bump_generation(conn)
        return result, None

    old_gen, new_gen = bump_generation(conn)
    if existing is None:
        cursor = conn.execute(
            "INSERT INTO pages (source_id, confluence_page_id, title, space_key, type, status, "
            "url, breadcrumb, ancestors, labels, author, created_at, updated_at, markdown, "
            "confluence_version, is_deleted, deleted_at, indexed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
            (source_id, document.page_id, *metadata, document.version, db_time(now)),
        )
        page_id = int(cursor.lastrowid or 0)
    else:
        page_id = int(existing["id"])
        conn.execute(
            "UPDATE pages SET title=?, space_key=?, type=?, status=?, url=?, breadcrumb=?, "
            "ancestors=?, labels=?, author=?, created_at=?, updated_at=?, markdown=?, "
            "confluence_version=?, is_deleted=0, deleted_at=NULL, indexed_at=? WHERE id=?",
            (*metadata, document.version, db_time(now), page_id),
        )
    old_ids = [int(row["id"]) for row in old_chunks]
    _drop_page_content(conn, [page_id])
    _replace_labels(conn, page_id, labels)

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

    result = WriteResult(
        page_id=page_id,
        page_key=key,
        created=existing is None,
        unchanged=False,
        undeleted=bool(existing is not None and existing["is_deleted"]),
        chunks_written=len(chunks),
        chunks_reused=reused,
        chunks_removed=len(old_ids),
        code_examples=len(document.code_blocks),
    )
    delta = VectorDelta(
        old_gen=old_gen,
        new_gen=new_gen,
        remove_ids=old_ids,
        add_ids=new_ids,
        add_pages=[page_id] * len(new_ids),
        add_vectors=list(matrix),
    )
    return result, delta


def _same_chunk_text(old: Sequence[sqlite3.Row], new: Sequence[Chunk]) -> bool:
    """The hash covers what is embedded; text and heading are what FTS and hits show."""
    return all(
        row["text"] == chunk.text and row["heading_path"] == db_json(list(chunk.heading_path))
        for row, chunk in zip(old, new, strict=True)
    )


def _page_metadata(document: Document, labels: tuple[str, ...]) -> tuple[object, ...]:
    """Column values in the order: title, space_key, type, status, url, breadcrumb, ancestors,
    labels, author, created_at, updated_at, markdown."""
    return (
        document.title,
        document.space_key,
        document.type,
        document.status,
        document.web_url,
        document.breadcrumb,
        db_json([list(pair) for pair in document.ancestors]),
        db_json(list(labels)),
        document.author,
        db_time(document.created_at),
        db_time(document.updated_at),
        document.markdown,
    )


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
            [db_time(when), *batch],
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
