"""Keeps this process's in-memory vector matrix in step with the database.

``index_meta.generation`` grows by one in every transaction that changes which chunks are live
(write, soft delete, restore, delete source), and each chunk records the generation at which it
became live (``chunks.gen``). The matrix remembers the generation it reflects:

- After its own commit the writer applies the change as a delta, but only if the matrix was
  exactly at the generation the transaction started from; otherwise another process wrote in
  between and the delta alone would leave gaps.
- Before a search a reader compares generations; if they differ it loads, in one read
  snapshot, the chunks that became live since (``gen > known``) and drops the ids that are no
  longer live. That is how a server sees what a CLI crawl in another process committed.

The matrix is first loaded on the first vector search, so a process that only writes (a CLI
crawl) never holds it in memory. It is a cache: ``fetch_chunks`` re-validates every id in SQL.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass, field

import numpy as np

from confluence_rag.store.vector_index import VectorIndex


@dataclass(slots=True)
class VectorDelta:
    """What one committed write transaction changed among live chunks."""

    old_gen: int
    new_gen: int
    remove_ids: list[int] = field(default_factory=list)
    remove_pages: list[int] = field(default_factory=list)
    add_ids: list[int] = field(default_factory=list)
    add_pages: list[int] = field(default_factory=list)
    add_vectors: list[np.ndarray] = field(default_factory=list)


def bump_generation(conn: sqlite3.Connection) -> tuple[int, int]:
    """Inside a write transaction: ``(old, new)`` generation, with ``new`` recorded."""
    old = int(conn.execute("SELECT generation FROM index_meta WHERE id = 1").fetchone()[0])
    conn.execute("UPDATE index_meta SET generation = ? WHERE id = 1", (old + 1,))
    return old, old + 1


class VectorSync:
    """The matrix plus the generation it reflects."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._index: VectorIndex | None = None
        self._known: int | None = None  # None: never loaded

    @property
    def index(self) -> VectorIndex | None:
        return self._index

    def apply(self, delta: VectorDelta) -> None:
        """Writer thread, after COMMIT."""
        with self._lock:
            if self._index is None or self._known != delta.old_gen:
                return  # not loaded, or behind: the next refresh loads from SQL
            index = self._index
            if delta.remove_pages:
                index.remove_pages(delta.remove_pages)
            if delta.remove_ids:
                index.remove(delta.remove_ids)
            if delta.add_ids:
                if any(v.shape[-1] != index.dimension for v in delta.add_vectors):
                    self._known = None  # the model changed: reload everything
                    return
                index.upsert(delta.add_ids, delta.add_pages, np.stack(delta.add_vectors))
            self._known = delta.new_gen

    def reset(self) -> None:
        with self._lock:
            self._index = None
            self._known = None

    def refresh(self, conn: sqlite3.Connection) -> VectorIndex | None:
        """Reader thread: bring the matrix up to the database's generation; returns it
        (``None`` when no model is recorded, i.e. nothing was ever indexed)."""
        row = conn.execute("SELECT generation, dimension FROM index_meta WHERE id = 1").fetchone()
        generation, dimension = int(row[0]), row[1]
        with self._lock:
            if dimension is None:
                self._index, self._known = None, None
                return None
            if self._index is not None and self._index.dimension != dimension:
                self._index, self._known = None, None
            if self._known == generation and self._index is not None:
                return self._index
            self._load_changes(conn, int(dimension))
            return self._index

    def _load_changes(self, conn: sqlite3.Connection, dimension: int) -> None:
        since = -1 if self._known is None or self._index is None else self._known
        if self._index is None:
            self._index = VectorIndex(dimension)
        index = self._index
        conn.execute("BEGIN")  # one snapshot: generation, new rows and live ids agree
        try:
            generation = int(
                conn.execute("SELECT generation FROM index_meta WHERE id = 1").fetchone()[0]
            )
            if since < 0:
                total = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
                index.reserve(int(total) + int(total) // 8 + 1024)
                # Full load: walk the chunks table in rowid order (sequential reads) rather
                # than through the gen index (one random seek per chunk).
                cursor = conn.execute(
                    "SELECT c.id, c.page_id, c.embedding FROM chunks c NOT INDEXED "
                    "JOIN pages p ON p.id = c.page_id WHERE p.is_deleted = 0"
                )
            else:
                cursor = conn.execute(
                    "SELECT c.id, c.page_id, c.embedding FROM chunks c "
                    "CROSS JOIN pages p ON p.id = c.page_id WHERE p.is_deleted = 0 AND c.gen > ?",
                    (since,),
                )
            while batch := cursor.fetchmany(4096):
                ids = [int(r[0]) for r in batch]
                pages = [int(r[1]) for r in batch]
                blob = b"".join(r[2] for r in batch)
                vectors = np.frombuffer(blob, dtype="<f4").reshape(len(batch), dimension)
                index.upsert(ids, pages, vectors)
            if since >= 0:
                live = np.fromiter(
                    (
                        int(r[0])
                        for r in conn.execute(
                            "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id "
                            "WHERE p.is_deleted = 0"
                        )
                    ),
                    dtype=np.int64,
                )
                stale = np.setdiff1d(index.ids(), live, assume_unique=True)
                if stale.size:
                    index.remove(stale.tolist())
        finally:
            conn.execute("ROLLBACK")
        self._known = generation
