"""Store contract: keyword, vector and code candidates with filters (every backend)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from confluence_rag.errors import IndexModelMismatch, InvalidInput
from confluence_rag.records import SearchFilters
from confluence_rag.store import Store
from tests.store import builders as b

pytestmark = pytest.mark.anyio


async def _page(
    store: Store,
    page_id: str,
    texts: list[str],
    vectors: list[np.ndarray] | None = None,
    headings: list[str] = (),  # type: ignore[assignment]
    **doc: object,
) -> None:
    document = b.document(page_id, **doc)  # type: ignore[arg-type]
    parts = b.chunks(document, texts, headings)
    matrix = np.stack(vectors) if vectors is not None else b.vectors(parts)
    await store.write_page(b.SOURCE, document, parts, matrix)


@pytest.fixture
async def ready(store: Store) -> Store:
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    return store


async def test_keyword_ranks_title_over_heading_over_body(ready: Store) -> None:
    await _page(ready, "1", ["nothing relevant here"], title="Kafka operations")
    await _page(ready, "2", ["nothing relevant here"], headings=["Kafka"], title="Misc")
    await _page(ready, "3", ["we also run kafka somewhere"], title="Other")
    hits = await ready.keyword_candidates("kafka", SearchFilters(), 10)
    pages = [r.confluence_page_id for r in await ready.fetch_chunks([c for c, _ in hits])]
    assert pages == ["1", "2", "3"]
    scores = [s for _, s in hits]
    assert scores == sorted(scores, reverse=True)


async def test_keyword_stems_and_ignores_case(ready: Store) -> None:
    await _page(ready, "1", ["Deploying services to production"])
    assert len(await ready.keyword_candidates("DEPLOYED", SearchFilters(), 10)) == 1


async def test_keyword_ors_terms_and_prefers_more_matches(ready: Store) -> None:
    await _page(ready, "1", ["restart the postgres database"])
    await _page(ready, "2", ["postgres only"])
    hits = await ready.keyword_candidates("how to restart postgres", SearchFilters(), 10)
    pages = [r.confluence_page_id for r in await ready.fetch_chunks([c for c, _ in hits])]
    assert pages == ["1", "2"]


@pytest.mark.parametrize(
    "query",
    [
        '"unbalanced',
        "a AND",
        "OR",
        "NOT",
        "NEAR(",
        "title:secret",
        "*",
        "^start",
        "-minus",
        "(((",
        "'; DROP TABLE chunks; --",
        "\x00",
        "",
        "   ",
        "💥",
    ],
)
async def test_keyword_never_raises_on_user_text(ready: Store, query: str) -> None:
    await _page(ready, "1", ["drop table minus start secret"])
    hits = await ready.keyword_candidates(query, SearchFilters(), 10)
    assert isinstance(hits, list)
    code = await ready.code_candidates(query, SearchFilters(), 10)
    assert isinstance(code, list)


async def test_vector_candidates_rank_by_cosine(ready: Store) -> None:
    await _page(ready, "1", ["a", "b"], vectors=[b.axis(0), b.axis(1)])
    await _page(ready, "2", ["c"], vectors=[(b.axis(0) + b.axis(2)) / np.sqrt(2)])
    hits = await ready.vector_candidates(b.axis(0) * 3.0, SearchFilters(), 10)
    rows = await ready.fetch_chunks([c for c, _ in hits])
    assert [r.text for r in rows] == ["a", "c", "b"]
    assert [round(s, 4) for _, s in hits] == [1.0, round(1 / np.sqrt(2), 4), 0.0]
    assert len(await ready.vector_candidates(b.axis(0), SearchFilters(), 1)) == 1


async def test_vector_candidates_check_the_query(ready: Store) -> None:
    await _page(ready, "1", ["a"])
    with pytest.raises(IndexModelMismatch):
        await ready.vector_candidates(np.ones(b.DIM + 3, dtype=np.float32), SearchFilters(), 5)
    with pytest.raises(InvalidInput):
        await ready.vector_candidates(np.full(b.DIM, np.nan), SearchFilters(), 5)


async def test_vector_search_on_an_empty_index_is_empty(store: Store) -> None:
    assert await store.vector_candidates(b.axis(0), SearchFilters(), 5) == []
    await store.ensure_index_model(b.MODEL, b.DIM)
    assert await store.vector_candidates(b.axis(0), SearchFilters(), 5) == []


async def test_filters_cut_before_the_top_k_for_vectors(ready: Store) -> None:
    # 30 chunks closer to the query in DEV, one far one in OPS: a filter on OPS must still
    # return the OPS chunk even with limit 5 (no post-filter starvation).
    close = [b.axis(0) + 0.01 * b.axis(1 + i % 7) for i in range(30)]
    await _page(ready, "1", [f"dev {i}" for i in range(30)], vectors=close, space="DEV")
    await _page(ready, "2", ["ops far"], vectors=[b.axis(5)], space="OPS")
    hits = await ready.vector_candidates(b.axis(0), SearchFilters(spaces=("OPS",)), 5)
    assert [r.text for r in await ready.fetch_chunks([c for c, _ in hits])] == ["ops far"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(), {"1", "2", "3", "4"}),
        (SearchFilters(source_id=b.SOURCE), {"1", "2", "3", "4"}),
        (SearchFilters(source_id="other:X"), set()),
        (SearchFilters(spaces=("OPS",)), {"2", "4"}),
        (SearchFilters(spaces=("OPS", "DEV")), {"1", "2", "3", "4"}),
        (SearchFilters(labels=("db",)), {"2"}),
        (SearchFilters(labels=("DB", "web")), {"2", "3"}),
        (SearchFilters(page_types=("blogpost",)), {"3"}),
        (SearchFilters(updated_after=datetime(2025, 2, 15, tzinfo=UTC)), {"3", "4"}),
        (SearchFilters(updated_after=datetime(2025, 2, 15)), {"3", "4"}),  # naive = UTC
        (SearchFilters(spaces=("OPS",), labels=("db",), page_types=("page",)), {"2"}),
        (SearchFilters(spaces=("NOPE",)), set()),
    ],
)
async def test_filters_for_keyword_vector_and_code(
    ready: Store, filters: SearchFilters, expected: set[str]
) -> None:
    specs = {
        "1": {"space": "DEV", "labels": ("ops",), "page_type": "page"},
        "2": {"space": "OPS", "labels": ("db", "ops"), "page_type": "page"},
        "3": {"space": "DEV", "labels": ("web",), "page_type": "blogpost"},
        "4": {"space": "OPS", "labels": (), "page_type": "page"},
    }
    for page_id, spec in specs.items():
        await _page(
            ready,
            page_id,
            [f"shared term {page_id}"],
            updated_at=datetime(2025, int(page_id), 1, tzinfo=UTC),
            code=[("sql", "select shared from t")],
            **spec,
        )
    keyword = await ready.keyword_candidates("shared", filters, 50)
    vector = await ready.vector_candidates(b.axis(0), filters, 50)
    code = await ready.code_candidates("shared", filters, 50)
    for ids in (keyword, vector):
        rows = await ready.fetch_chunks([c for c, _ in ids])
        assert {r.confluence_page_id for r in rows} == expected
    assert {r.confluence_page_id for r in await ready.fetch_code([c for c, _ in code])} == expected


async def test_code_candidates_match_code_and_its_context(ready: Store) -> None:
    await _page(
        ready,
        "1",
        ["text"],
        title="Backup",
        code=[("python", "import boto3\ns3.upload_file()"), ("bash", "pg_dump mydb > out.sql")],
    )
    await _page(ready, "2", ["text"], title="Other", code=[("Python", "print('hello')")])
    by_code = await ready.code_candidates("pg_dump", SearchFilters(), 10)
    rows = await ready.fetch_code([c for c, _ in by_code])
    assert [r.language for r in rows] == ["bash"]
    assert rows[0].code == "pg_dump mydb > out.sql" and rows[0].line_count == 1
    by_title = await ready.code_candidates("backup", SearchFilters(language="PYTHON"), 10)
    rows = await ready.fetch_code([c for c, _ in by_title])
    assert [(r.language, r.title) for r in rows] == [("python", "Backup")]
    py = await ready.code_candidates("print", SearchFilters(language="python"), 10)
    assert [r.confluence_page_id for r in await ready.fetch_code([c for c, _ in py])] == ["2"]


async def test_fetch_keeps_the_order_asked_for(ready: Store) -> None:
    await _page(ready, "1", ["one", "two", "three"])
    ids = [c for c, _ in await ready.vector_candidates(b.axis(0), SearchFilters(), 10)]
    rows = await ready.fetch_chunks(list(reversed(ids)))
    assert [r.chunk_id for r in rows] == list(reversed(ids))
    assert rows[0].page_key == f"{b.SOURCE}:1" and rows[0].labels == ("ops",)


async def test_a_label_change_without_a_new_version_is_seen_by_filters(ready: Store) -> None:
    await _page(ready, "1", ["labelled text"], labels=("old",))
    old = SearchFilters(labels=("old",))
    assert len(await ready.vector_candidates(b.axis(0), old, 5)) == 1
    await _page(ready, "1", ["labelled text"], labels=("new",))  # same version
    assert await ready.vector_candidates(b.axis(0), old, 5) == []
    assert await ready.keyword_candidates("labelled", old, 5) == []
    new = SearchFilters(labels=("new",))
    assert len(await ready.vector_candidates(b.axis(0), new, 5)) == 1
    assert len(await ready.keyword_candidates("labelled", new, 5)) == 1
