"""Search reads on SQLite: FTS5 keyword candidates, filters, and fetching hits by id.

All functions take a reader connection. bm25() in FTS5 returns "more negative is better"; we
return its negation so every retriever reports "higher is better".

Joins are written ``CROSS JOIN``, which in SQLite fixes the loop order: the rows we already
know (FTS matches, ids asked for) drive, and pages are looked up by primary key. Left to
itself the planner sometimes starts from "all live pages" instead (measured: 14 ms instead of
0.2 ms to fetch 20 chunks of a 100k-chunk index).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from confluence_rag.records import ChunkRow, CodeRow, SearchFilters
from confluence_rag.store.page_reads import has_page_filters
from confluence_rag.store.page_reads import page_filter_sql as shared_page_filter_sql
from confluence_rag.store.query_terms import fts5_match, query_terms
from confluence_rag.store.rows import CHUNK_COLUMNS, CODE_COLUMNS, chunk_from_row, code_from_row
from confluence_rag.store.sqlite_rows import SQLITE, marks
from confluence_rag.store.values import batched

# Column weights for bm25 over (title, heading, text): a word in the page title says more
# about a chunk than one in its heading path, which says more than one in the body.
CHUNK_FTS_WEIGHTS = (3.0, 2.0, 1.0)
# (code, context): the caption/heading/title around a code block describe what it does.
CODE_FTS_WEIGHTS = (1.0, 2.0)


def page_filter_sql(filters: SearchFilters, alias: str = "p") -> tuple[str, list[Any]]:
    """``page_reads.page_filter_sql`` in SQLite's spelling."""
    return shared_page_filter_sql(SQLITE, filters, alias)


class TermFrequencies:
    """How many chunks contain each query term (FTS5 stems it as it matches), cached, and the
    pruning of common terms that keeps keyword search fast on large indexes.

    FTS5 computes bm25 for EVERY row an OR query matches before the LIMIT applies, at ~1.3 us
    a row (CPU): at 100k chunks a question with a few common words matches most of the index
    and costs ~60 ms. Indexes up to ``EXACT_UP_TO`` chunks (thousands of pages) are always
    scored exactly. Above that, ``prune``:

    1. drops terms found in more than ``COMMON_FRACTION`` of the chunks (the lowest IDF),
    2. then, rarest first, keeps terms while the rows to score stay within ``ROW_BUDGET``,

    always keeping at least the rarest term. Measured on SciFact (exact there: 11.8k chunks)
    by forcing the rules on, relative to exact bm25: step 1 costs hybrid nDCG@10 0.004
    (0.7280 -> 0.7237); a budget of 5% of the chunks instead would cost 0.030. At 100k
    chunks the pruned search takes ~7.5 ms CPU instead of ~60 (bench/search_latency.py
    prints the top-10 overlap with exact bm25). Counts are cached for a minute: they only
    steer the choice, so staleness is harmless.
    """

    EXACT_UP_TO = 25_000
    COMMON_FRACTION = 0.10
    ROW_BUDGET = 10_000
    TTL_SECONDS = 60.0
    MAX_ENTRIES = 50_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, int]] = {}

    def count(self, conn: sqlite3.Connection, term: str) -> int:
        return self._cached(
            conn,
            term,
            "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
            (fts5_match([term]),),
        )

    def total(self, conn: sqlite3.Connection) -> int:
        return self._cached(conn, "\x00total", "SELECT count(*) FROM chunks", ())

    def prune(self, conn: sqlite3.Connection, terms: list[str]) -> list[str]:
        if len(terms) <= 1:
            return terms
        total = self.total(conn)
        if total <= self.EXACT_UP_TO:
            return terms
        counts = {term: self.count(conn, term) for term in terms}
        by_rarity = sorted((t for t in terms if counts[t] > 0), key=lambda t: counts[t])
        if not by_rarity:
            return terms
        kept: list[str] = []
        rows = 0
        for term in by_rarity:
            if kept and (
                counts[term] > self.COMMON_FRACTION * total or rows + counts[term] > self.ROW_BUDGET
            ):
                break
            kept.append(term)
            rows += counts[term]
        return kept

    def _cached(self, conn: sqlite3.Connection, key: str, sql: str, params: tuple[Any, ...]) -> int:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < self.TTL_SECONDS:
            return hit[1]
        value = int(conn.execute(sql, params).fetchone()[0])
        with self._lock:
            if len(self._cache) >= self.MAX_ENTRIES:
                self._cache.clear()
            self._cache[key] = (now, value)
        return value


def keyword_candidates(
    conn: sqlite3.Connection,
    query: str,
    filters: SearchFilters,
    limit: int,
    frequencies: TermFrequencies | None = None,
) -> list[tuple[int, float]]:
    terms = query_terms(query)
    if frequencies is not None:
        terms = frequencies.prune(conn, terms)
    match = fts5_match(terms)
    if not match or limit <= 0:
        return []
    weights = ", ".join(str(w) for w in CHUNK_FTS_WEIGHTS)
    if has_page_filters(filters):
        where, params = page_filter_sql(filters)
        sql = (
            f"SELECT f.rowid, bm25(chunks_fts, {weights}) AS rank FROM chunks_fts f "
            # The covering index (id, page_id) is named: the planner would look each match up
            # in the chunks table itself, whose rows carry text and embedding (20 ms instead
            # of 12 at 100k chunks).
            "CROSS JOIN chunks c INDEXED BY ix_chunks_id_page ON c.id = f.rowid "
            "CROSS JOIN pages p ON p.id = c.page_id "
            f"WHERE chunks_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
        )
        rows = conn.execute(sql, [match, *params, limit])
    else:
        # chunks_fts only holds live pages' chunks, so no join is needed here.
        rows = conn.execute(
            f"SELECT rowid, bm25(chunks_fts, {weights}) AS rank FROM chunks_fts "
            "WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?",
            (match, limit),
        )
    return [(int(row[0]), -float(row[1])) for row in rows]


def code_candidates(
    conn: sqlite3.Connection, query: str, filters: SearchFilters, limit: int
) -> list[tuple[int, float]]:
    match = fts5_match(query_terms(query))
    if not match or limit <= 0:
        return []
    weights = ", ".join(str(w) for w in CODE_FTS_WEIGHTS)
    where, params = page_filter_sql(filters)
    if filters.language:
        where += " AND e.language = ?"
        params.append(filters.language.strip().lower())
    sql = (
        f"SELECT f.rowid, bm25(code_fts, {weights}) AS rank FROM code_fts f "
        "CROSS JOIN code_examples e ON e.id = f.rowid CROSS JOIN pages p ON p.id = e.page_id "
        f"WHERE code_fts MATCH ? AND {where} ORDER BY rank LIMIT ?"
    )
    return [(int(row[0]), -float(row[1])) for row in conn.execute(sql, [match, *params, limit])]


def allowed_pages(conn: sqlite3.Connection, filters: SearchFilters) -> np.ndarray:
    """Ids of live pages matching the filters (the vector search mask)."""
    where, params = page_filter_sql(filters)
    rows = conn.execute(f"SELECT p.id FROM pages p WHERE {where}", params)
    return np.fromiter((int(row[0]) for row in rows), dtype=np.int64)


def fetch_chunks(conn: sqlite3.Connection, ids: Sequence[int]) -> list[ChunkRow]:
    found: dict[int, ChunkRow] = {}
    for batch in batched([int(i) for i in ids]):
        rows = conn.execute(
            f"SELECT {CHUNK_COLUMNS} FROM chunks c CROSS JOIN pages p ON p.id = c.page_id "
            f"WHERE c.id IN ({marks(len(batch))}) AND p.is_deleted = 0",
            batch,
        )
        for row in rows:
            chunk = chunk_from_row(row, SQLITE)
            found[chunk.chunk_id] = chunk
    return [found[int(i)] for i in dict.fromkeys(ids) if int(i) in found]


def page_chunks(
    conn: sqlite3.Connection, source_id: str, confluence_page_id: str
) -> list[ChunkRow]:
    rows = conn.execute(
        f"SELECT {CHUNK_COLUMNS} FROM pages p CROSS JOIN chunks c ON c.page_id = p.id "
        "WHERE p.source_id = ? AND p.confluence_page_id = ? AND p.is_deleted = 0 "
        "ORDER BY c.ordinal",
        (source_id, confluence_page_id),
    )
    return [chunk_from_row(row, SQLITE) for row in rows]


def fetch_code(conn: sqlite3.Connection, ids: Sequence[int]) -> list[CodeRow]:
    found: dict[int, CodeRow] = {}
    for batch in batched([int(i) for i in ids]):
        rows = conn.execute(
            f"SELECT {CODE_COLUMNS} FROM code_examples e CROSS JOIN pages p ON p.id = e.page_id "
            f"WHERE e.id IN ({marks(len(batch))}) AND p.is_deleted = 0",
            batch,
        )
        for row in rows:
            code = code_from_row(row, SQLITE)
            found[code.code_id] = code
    return [found[int(i)] for i in dict.fromkeys(ids) if int(i) in found]
