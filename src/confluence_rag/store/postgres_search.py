"""Search reads on PostgreSQL: full-text and vector candidates, filters, fetching hits by id.

Every filter value is a bound parameter (``= ANY(%s)`` for lists); the only SQL text built here
is a fixed set of clauses chosen by which filters are present.

Keywords: the query is reduced to words by the shared ``query_terms`` (the same terms SQLite
matches and the highlighter marks), OR-ed, and parsed by ``websearch_to_tsquery``, which never
raises on user text; ``ts_rank_cd`` over the weighted ``tsv`` ranks them.

Vectors: ``ORDER BY embedding <=> q LIMIT k`` uses the HNSW index. Filters join ``pages``;
pgvector 0.8's iterative index scan keeps scanning the graph until ``k`` rows pass the filters,
so a narrow filter still returns its nearest chunks instead of an almost empty list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from confluence_rag.errors import IndexModelMismatch
from confluence_rag.records import ChunkRow, CodeRow, IndexModel, SearchFilters
from confluence_rag.store.page_reads import page_filter_sql as shared_page_filter_sql
from confluence_rag.store.postgres_rows import POSTGRES, Conn, fetchall, fetchone, pg_sql
from confluence_rag.store.postgres_schema import TS_CONFIG
from confluence_rag.store.query_terms import query_terms
from confluence_rag.store.rows import CHUNK_COLUMNS, CODE_COLUMNS, chunk_from_row, code_from_row

#: ts_rank_cd weights for {D, C, B, A}: title (A) > headings (B) > body (C), as SQLite's bm25
#: column weights.
RANK_WEIGHTS = "{0.1, 0.33, 0.66, 1.0}"
#: The any-word tier of a multi-word keyword query ranks at most this many matches.
OR_SCAN_CAP = 500
#: pgvector's ef_search range.
EF_SEARCH_MAX = 1000


def page_filter_sql(filters: SearchFilters, alias: str = "p") -> tuple[str, list[Any]]:
    """``page_reads.page_filter_sql`` in PostgreSQL's spelling."""
    where, params = shared_page_filter_sql(POSTGRES, filters, alias)
    return pg_sql(where), params


def tsquery_text(query: str) -> str:
    """Input for ``websearch_to_tsquery``: the query's words OR-ed (``""``: nothing to find).

    Terms are letters and digits only, so the one websearch operator they can form is the word
    ``or``, which is a stop word (dropped) unless it is all there is.
    """
    return " or ".join(query_terms(query))


def _rank(column: str, function: str = "ts_rank_cd") -> str:
    query = f"websearch_to_tsquery('{TS_CONFIG}', %s)"
    return f"{function}('{RANK_WEIGHTS}'::float4[], {column}, {query})"


def keyword_query(filters: SearchFilters, tiers: bool) -> tuple[str, list[Any]]:
    """The keyword query and its filter parameters (see ``keyword_candidates`` for the order
    in which they are bound). Separate so tests can EXPLAIN exactly what runs."""
    where, params = page_filter_sql(filters)
    if not tiers:
        query = (
            f"SELECT c.id, {_rank('c.tsv')} AS score FROM chunks c "
            f"JOIN pages p ON p.id = c.page_id WHERE c.tsv @@ websearch_to_tsquery("
            f"'{TS_CONFIG}', %s) AND {where} ORDER BY score DESC, c.id LIMIT %s"
        )
        return query, params
    query = (
        # Tier 1, exhaustive: chunks with every word (few; the ones that matter most).
        f"WITH every AS (SELECT c.id, {_rank('c.tsv')} AS rank FROM chunks c "
        f"JOIN pages p ON p.id = c.page_id WHERE c.tsv @@ websearch_to_tsquery('{TS_CONFIG}', "
        f"%s) AND {where} ORDER BY rank DESC, c.id LIMIT %s), "
        # Tier 2, bounded: chunks with any word, only when tier 1 came up short (the
        # scalar subquery is a one-time filter: the scan does not run otherwise).
        f"anyone AS (SELECT m.id, {_rank('m.tsv', 'ts_rank')} AS rank FROM ("
        "SELECT c.id, c.tsv FROM chunks c JOIN pages p ON p.id = c.page_id "
        f"WHERE c.tsv @@ websearch_to_tsquery('{TS_CONFIG}', %s) AND {where} "
        "AND (SELECT count(*) FROM every) < %s LIMIT %s) AS m) "
        "SELECT id, 1 + rank / (1 + rank) AS score FROM every UNION ALL "
        "SELECT id, rank / (1 + rank) FROM anyone WHERE id NOT IN (SELECT id FROM every) "
        "ORDER BY score DESC, id LIMIT %s"
    )
    return query, params


async def keyword_candidates(
    conn: Conn, query: str, filters: SearchFilters, limit: int
) -> list[tuple[int, float]]:
    """Chunks with EVERY query word first, then chunks with ANY of them, each tier by rank.

    Ranking every chunk that shares one common word with a long question is what makes an
    OR query slow on a large index (it reads and scores each match). Chunks that match all the
    words are few and are the ones that matter, so they are ranked exhaustively; the any-word
    tier, needed only when they are fewer than ``limit``, ranks at most ``OR_SCAN_CAP`` matches
    with the cheaper ``ts_rank`` (cover density costs ~25 us a row).
    Scores: all-words tier in [1, 2), any-word tier in [0, 1), monotonic in ``ts_rank_cd``
    within a tier. One statement, so one snapshot and one round trip.
    """
    terms = query_terms(query)
    if not terms or limit <= 0:
        return []
    any_words = " or ".join(terms)
    if len(terms) == 1:
        sql, params = keyword_query(filters, tiers=False)
        bound = [any_words, any_words, *params, limit]
    else:
        sql, params = keyword_query(filters, tiers=True)
        all_words = " ".join(terms)
        bound = [
            all_words,
            all_words,
            *params,
            limit,
            any_words,
            any_words,
            *params,
            limit,
            OR_SCAN_CAP,
            limit,
        ]
    rows = await fetchall(conn, sql, bound)
    return [(int(row["id"]), float(row["score"])) for row in rows]


async def code_candidates(
    conn: Conn, query: str, filters: SearchFilters, limit: int
) -> list[tuple[int, float]]:
    text = tsquery_text(query)
    if not text or limit <= 0:
        return []
    where, params = page_filter_sql(filters)
    if filters.language:
        where += " AND e.language = %s"
        params.append(filters.language.strip().lower())
    rows = await fetchall(
        conn,
        "SELECT e.id, ts_rank_cd(e.tsv, q) AS rank "
        f"FROM code_examples e JOIN pages p ON p.id = e.page_id, "
        f"websearch_to_tsquery('{TS_CONFIG}', %s) AS q "
        f"WHERE e.tsv @@ q AND {where} ORDER BY rank DESC, e.id LIMIT %s",
        [text, *params, limit],
    )
    return [(int(row["id"]), float(row["rank"])) for row in rows]


def vector_query(filters: SearchFilters) -> tuple[str, list[Any]]:
    """The nearest-chunks query and its filter parameters; the caller binds
    ``[vector, *params, limit]``. Separate so tests can EXPLAIN exactly what runs."""
    where, params = page_filter_sql(filters)
    query = (
        "SELECT id, 1 - distance AS score FROM ("
        "SELECT c.id, c.embedding <=> %s AS distance FROM chunks c "
        f"JOIN pages p ON p.id = c.page_id WHERE {where} ORDER BY distance LIMIT %s"
        ") AS nearest ORDER BY distance, id"
    )
    return query, params


async def prepare_vector_search(conn: Conn, ef_search: int, limit: int) -> IndexModel | None:
    """Set the HNSW options for the rest of this transaction (``set_config(..., true)`` is
    ``SET LOCAL`` with a bound value) and read the index model, in one round trip."""
    ef = max(min(int(ef_search), EF_SEARCH_MAX), min(int(limit), EF_SEARCH_MAX))
    row = await fetchone(
        conn,
        "SELECT set_config('hnsw.ef_search', %s, true), "
        "set_config('hnsw.iterative_scan', 'relaxed_order', true), model_id, dimension "
        "FROM index_meta WHERE id = 1",
        (str(ef),),
    )
    if row is None or row["model_id"] is None:
        return None
    return IndexModel(model_id=row["model_id"], dimension=int(row["dimension"]))


async def vector_candidates(
    conn: Conn, vector: np.ndarray, filters: SearchFilters, limit: int, ef_search: int
) -> list[tuple[int, float]]:
    """Nearest live chunks by cosine similarity (1 - cosine distance), best first.
    ``IndexModelMismatch`` if the vector's dimension is not the index's."""
    model = await prepare_vector_search(conn, ef_search, limit)
    if model is None or limit <= 0:
        return []  # nothing was ever indexed
    if vector.shape[0] != model.dimension:
        raise IndexModelMismatch(
            f"the query vector has {vector.shape[0]} dimensions but this index was "
            f"built by {model.model_id!r} with {model.dimension}: search with the "
            "model that built it, or rebuild the index with the new one",
            details={"index_dimension": model.dimension, "got": int(vector.shape[0])},
        )
    query, params = vector_query(filters)
    rows = await fetchall(conn, query, [vector, *params, limit])
    return [(int(row["id"]), float(row["score"])) for row in rows]


async def fetch_chunks(conn: Conn, ids: Sequence[int]) -> list[ChunkRow]:
    wanted = [int(i) for i in ids]
    rows = await fetchall(
        conn,
        f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN pages p ON p.id = c.page_id "
        "WHERE c.id = ANY(%s) AND NOT p.is_deleted",
        (wanted,),
    )
    found = {int(row["chunk_id"]): chunk_from_row(row, POSTGRES) for row in rows}
    return [found[i] for i in dict.fromkeys(wanted) if i in found]


async def page_chunks(conn: Conn, source_id: str, confluence_page_id: str) -> list[ChunkRow]:
    rows = await fetchall(
        conn,
        f"SELECT {CHUNK_COLUMNS} FROM pages p JOIN chunks c ON c.page_id = p.id "
        "WHERE p.source_id = %s AND p.confluence_page_id = %s AND NOT p.is_deleted "
        "ORDER BY c.ordinal",
        (source_id, confluence_page_id),
    )
    return [chunk_from_row(row, POSTGRES) for row in rows]


async def fetch_code(conn: Conn, ids: Sequence[int]) -> list[CodeRow]:
    wanted = [int(i) for i in ids]
    rows = await fetchall(
        conn,
        f"SELECT {CODE_COLUMNS} FROM code_examples e JOIN pages p ON p.id = e.page_id "
        "WHERE e.id = ANY(%s) AND NOT p.is_deleted",
        (wanted,),
    )
    found = {int(row["code_id"]): code_from_row(row, POSTGRES) for row in rows}
    return [found[i] for i in dict.fromkeys(wanted) if i in found]
