"""PostgreSQL specifics of page writes and search: weights, filters, HNSW, soft deletes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
import pytest

from confluence_rag.errors import IndexModelMismatch
from confluence_rag.records import SearchFilters
from confluence_rag.settings import Settings
from confluence_rag.store import open_store
from confluence_rag.store.postgres import PostgresStore
from confluence_rag.store.postgres_schema import HNSW_INDEX
from confluence_rag.store.postgres_search import vector_query
from tests.store import builders as b

pytestmark = pytest.mark.anyio
NO_FILTERS = SearchFilters()


async def _write(store: PostgresStore, doc_id: str, texts: list[str], **doc: Any) -> None:
    document = b.document(doc_id, **doc)
    chunks = b.chunks(document, texts)
    await store.write_page(b.SOURCE, document, chunks, b.vectors(chunks))


async def _pages(store: PostgresStore, hits: list[tuple[int, float]]) -> list[str]:
    return [row.confluence_page_id for row in await store.fetch_chunks([c for c, _ in hits])]


async def test_title_outranks_heading_outranks_body(pg_store: PostgresStore) -> None:
    await _write(pg_store, "1", ["nothing relevant here"], title="Kubernetes rollout")
    await _write(pg_store, "2", ["nothing relevant here either"], title="Other page")
    await _write(pg_store, "3", ["we use kubernetes in production"], title="Third page")
    doc = b.document("2", title="Other page")
    chunks = b.chunks(doc, ["nothing relevant here either"], headings=["Kubernetes notes"])
    await pg_store.write_page(b.SOURCE, doc, chunks, b.vectors(chunks))

    hits = await pg_store.keyword_candidates("kubernetes", NO_FILTERS, 10)
    rows = await pg_store.fetch_chunks([cid for cid, _ in hits])
    assert [row.confluence_page_id for row in rows] == ["1", "2", "3"]
    scores = [score for _, score in hits]
    assert scores == sorted(scores, reverse=True) and scores[-1] > 0


async def test_user_text_never_breaks_the_query(pg_store: PostgresStore) -> None:
    await _write(pg_store, "1", ["deploy the service with helm"])
    for query in ['"unbalanced', "a & b | !c", "-deploy", "deploy:*", "(helm", "or", "", "   "]:
        await pg_store.keyword_candidates(query, NO_FILTERS, 10)  # no exception
    assert await pg_store.keyword_candidates("", NO_FILTERS, 10) == []
    found = await pg_store.keyword_candidates("helm's (deploy", NO_FILTERS, 10)
    assert len(found) == 1


async def test_filters_are_parameters_not_sql(pg_store: PostgresStore) -> None:
    await _write(pg_store, "1", ["release checklist"], space="DEV", labels=("ops",))
    await _write(pg_store, "2", ["release notes"], space="OPS", labels=("howto",))
    hostile = "DEV' OR '1'='1"
    for filters in (
        SearchFilters(spaces=(hostile,)),
        SearchFilters(labels=(hostile,)),
        SearchFilters(source_id=hostile),
        SearchFilters(page_types=(hostile,)),
    ):
        assert await pg_store.keyword_candidates("release", filters, 10) == []
        assert await pg_store.vector_candidates(b.axis(0), filters, 10) == []

    dev = await pg_store.keyword_candidates("release", SearchFilters(spaces=("DEV",)), 10)
    assert await _pages(pg_store, dev) == ["1"]
    howto = await pg_store.keyword_candidates("release", SearchFilters(labels=("HowTo",)), 10)
    assert await _pages(pg_store, howto) == ["2"]
    later = SearchFilters(updated_after=datetime(2030, 1, 1))  # naive: taken as UTC
    assert await pg_store.keyword_candidates("release", later, 10) == []
    earlier = SearchFilters(updated_after=datetime(2020, 1, 1, tzinfo=UTC))
    assert len(await pg_store.vector_candidates(b.axis(1), earlier, 10)) == 2


async def test_vector_search_orders_by_cosine_and_hides_deleted(pg_store: PostgresStore) -> None:
    doc_a, doc_b = b.document("A"), b.document("B")
    chunks_a, chunks_b = b.chunks(doc_a, ["alpha"]), b.chunks(doc_b, ["beta"])
    near = b.axis(0)
    far = (b.axis(0) + b.axis(1)) / np.sqrt(2)
    await pg_store.write_page(b.SOURCE, doc_a, chunks_a, near[None, :])
    await pg_store.write_page(b.SOURCE, doc_b, chunks_b, far[None, :].astype(np.float32))
    hits = await pg_store.vector_candidates(b.axis(0), NO_FILTERS, 10)
    assert len(hits) == 2
    assert hits[0][1] == pytest.approx(1.0, abs=1e-6)
    assert hits[1][1] == pytest.approx(1 / np.sqrt(2), abs=1e-6)
    rows = await pg_store.fetch_chunks([cid for cid, _ in hits])
    assert [r.confluence_page_id for r in rows] == ["A", "B"]

    await pg_store.soft_delete_pages(b.SOURCE, ["A"], datetime.now(UTC))
    hits = await pg_store.vector_candidates(b.axis(0), NO_FILTERS, 10)
    assert [r.confluence_page_id for r in await pg_store.fetch_chunks([h[0] for h in hits])] == [
        "B"
    ]
    assert await pg_store.keyword_candidates("alpha", NO_FILTERS, 10) == []
    await pg_store.restore_pages(b.SOURCE, ["A"])
    assert len(await pg_store.keyword_candidates("alpha", NO_FILTERS, 10)) == 1

    stored = await pg_store.embeddings_for_hashes(b.SOURCE, [chunks_a[0].content_hash])
    np.testing.assert_allclose(stored[chunks_a[0].content_hash], near)
    with pytest.raises(IndexModelMismatch):
        await pg_store.vector_candidates(np.ones(3, dtype=np.float32), NO_FILTERS, 5)


async def test_hnsw_index_serves_filtered_vector_search(
    pg_store: PostgresStore, pg_database_url: str
) -> None:
    rng = np.random.default_rng(7)
    for page in range(40):
        doc = b.document(f"P{page}", space="DEV" if page % 2 else "OPS")
        chunks = b.chunks(doc, [f"chunk {page} {i}" for i in range(50)])
        matrix = rng.standard_normal((50, b.DIM)).astype(np.float32)
        await pg_store.write_page(b.SOURCE, doc, chunks, matrix)
    query = rng.standard_normal(b.DIM).astype(np.float32)
    filters = SearchFilters(spaces=("DEV",))
    hits = await pg_store.vector_candidates(query, filters, 10)
    rows = await pg_store.fetch_chunks([cid for cid, _ in hits])
    assert len(rows) == 10 and {r.space_key for r in rows} == {"DEV"}

    sql, params = vector_query(filters)
    with psycopg.connect(pg_database_url) as conn:
        conn.execute("ANALYZE")
        conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        literal = "[" + ",".join(str(float(x)) for x in query) + "]"
        plan = conn.execute(
            "EXPLAIN " + sql.replace("<=> %s", "<=> %s::vector", 1), [literal, *params, 10]
        ).fetchall()
    text = "\n".join(row[0] for row in plan)
    assert HNSW_INDEX in text, text

    # Exact neighbours (brute force) agree with the index on this small set.
    with psycopg.connect(pg_database_url) as conn:
        exact = conn.execute(
            "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id "
            "WHERE p.space_key = 'DEV' ORDER BY c.embedding <=> %s::vector, c.id LIMIT 10",
            [literal],
        ).fetchall()
    assert {cid for cid, _ in hits} == {row[0] for row in exact}


async def test_model_dimension_sizes_the_column(pg_database_url: str) -> None:
    async with PostgresStore(pg_database_url) as store:
        assert await store.get_index_model() is None
        await store.ensure_index_model("wide-model", 3072)  # above HNSW's 2,000 limit
        await store.create_source(b.source())
        doc = b.document("1")
        chunks = b.chunks(doc, ["wide vectors still work"])
        vector = np.zeros((1, 3072), dtype=np.float32)
        vector[0, 5] = 1.0
        await store.write_page(b.SOURCE, doc, chunks, vector)
        hits = await store.vector_candidates(vector[0], NO_FILTERS, 5)
        assert len(hits) == 1 and hits[0][1] == pytest.approx(1.0)
        with pytest.raises(IndexModelMismatch):
            await store.ensure_index_model(b.MODEL, b.DIM)
    with psycopg.connect(pg_database_url) as conn:
        row = conn.execute(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
        ).fetchone()
    assert row == ("vector(3072)",)


def test_open_store_selects_postgres(pg_database_url: str, settings: Settings) -> None:
    chosen = open_store(settings.model_copy(update={"database_url": pg_database_url}))
    assert isinstance(chosen, PostgresStore)


async def test_chunks_with_every_word_come_before_chunks_with_some(pg_store: PostgresStore) -> None:
    await _write(pg_store, "1", ["unrelated text"], title="Rollback")
    await _write(pg_store, "2", ["how to rollback a database migration safely"])
    await _write(pg_store, "3", ["database sizing"])
    hits = await pg_store.keyword_candidates("rollback the database migration", NO_FILTERS, 10)
    assert (await _pages(pg_store, hits))[0] == "2"
    assert set(await _pages(pg_store, hits)) == {"1", "2", "3"}
    assert hits[0][1] >= 1.0 > hits[1][1] >= hits[2][1] > 0  # tiers, then rank within a tier
    only_all = await pg_store.keyword_candidates("rollback database migration", NO_FILTERS, 1)
    assert await _pages(pg_store, only_all) == ["2"]
