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

from confluence_rag.search.models import SearchFilters
from confluence_rag.store.base import ChunkRow, CodeRow
from confluence_rag.store.postgres_records import Conn, fetchall
from confluence_rag.store.postgres_rows import (
    CHUNK_COLUMNS,
    CODE_COLUMNS,
    chunk_from_row,
    code_from_row,
    normalise_labels,
    pg_time,
)
from confluence_rag.store.postgres_schema import TS_CONFIG
from confluence_rag.store.query_terms import query_terms

#: ts_rank_cd weights for {D, C, B, A}: title (A) > headings (B) > body (C), as SQLite's bm25
#: column weights.
RANK_WEIGHTS = "{0.1, 0.33, 0.66, 1.0}"
#: pgvector's ef_search range.
EF_SEARCH_MAX = 1000


def page_filter_sql(filters: SearchFilters, alias: str = "p") -> tuple[str, list[Any]]:
    """A WHERE fragment over ``pages AS alias``: live pages matching every filter given."""
    clauses = [f"NOT {alias}.is_deleted"]
    params: list[Any] = []
    if filters.source_id:
        clauses.append(f"{alias}.source_id = %s")
        params.append(filters.source_id)
    if filters.spaces:
        clauses.append(f"{alias}.space_key = ANY(%s)")
        params.append(list(filters.spaces))
    if filters.page_types:
        clauses.append(f"{alias}.type = ANY(%s)")
        params.append(list(filters.page_types))
    if filters.updated_after is not None:
        clauses.append(f"{alias}.updated_at > %s")
        params.append(pg_time(filters.updated_after))
    labels = normalise_labels(filters.labels)
    if labels:
        clauses.append(
            f"EXISTS (SELECT 1 FROM page_labels l WHERE l.page_id = {alias}.id "
            "AND l.label = ANY(%s))"
        )
        params.append(list(labels))
    return " AND ".join(clauses), params


def tsquery_text(query: str) -> str:
    """Input for ``websearch_to_tsquery``: the query's words OR-ed (``""``: nothing to find).

    Terms are letters and digits only, so the one websearch operator they can form is the word
    ``or``, which is a stop word (dropped) unless it is all there is.
    """
    return " or ".join(query_terms(query))


async def keyword_candidates(
    conn: Conn, query: str, filters: SearchFilters, limit: int
) -> list[tuple[int, float]]:
    text = tsquery_text(query)
    if not text or limit <= 0:
        return []
    where, params = page_filter_sql(filters)
    rows = await fetchall(
        conn,
        "SELECT c.id, ts_rank_cd(%s::float4[], c.tsv, q) AS rank "
        f"FROM chunks c JOIN pages p ON p.id = c.page_id, "
        f"websearch_to_tsquery('{TS_CONFIG}', %s) AS q "
        f"WHERE c.tsv @@ q AND {where} ORDER BY rank DESC, c.id LIMIT %s",
        [RANK_WEIGHTS, text, *params, limit],
    )
    return [(int(row["id"]), float(row["rank"])) for row in rows]


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


async def set_search_options(conn: Conn, ef_search: int, limit: int) -> None:
    """HNSW options for the rest of this transaction."""
    ef = max(min(int(ef_search), EF_SEARCH_MAX), min(int(limit), EF_SEARCH_MAX))
    # SET LOCAL cannot take parameters; ef is an int computed here, not user text.
    await conn.execute(f"SET LOCAL hnsw.ef_search = {ef}")
    await conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")


async def vector_candidates(
    conn: Conn, vector: np.ndarray, filters: SearchFilters, limit: int, ef_search: int
) -> list[tuple[int, float]]:
    """Nearest live chunks by cosine similarity (1 - cosine distance), best first."""
    if limit <= 0:
        return []
    await set_search_options(conn, ef_search, limit)
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
    found = {int(row["chunk_id"]): chunk_from_row(row) for row in rows}
    return [found[i] for i in dict.fromkeys(wanted) if i in found]


async def fetch_code(conn: Conn, ids: Sequence[int]) -> list[CodeRow]:
    wanted = [int(i) for i in ids]
    rows = await fetchall(
        conn,
        f"SELECT {CODE_COLUMNS} FROM code_examples e JOIN pages p ON p.id = e.page_id "
        "WHERE e.id = ANY(%s) AND NOT p.is_deleted",
        (wanted,),
    )
    found = {int(row["code_id"]): code_from_row(row) for row in rows}
    return [found[i] for i in dict.fromkeys(wanted) if i in found]
