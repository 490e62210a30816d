"""One ranking: the pure scoring (``search/ranking.py``) and, over a real SQLite index, the
promise that a search's order does not depend on its limit and its scores are its order."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confluence_rag.records import ChunkRow
from confluence_rag.search.fusion import Fused
from confluence_rag.search.models import SearchHit
from confluence_rag.search.ranking import (
    PHRASE_BONUS,
    TITLE_BONUS,
    group_by_page,
    normalised_title,
    rank_chunks,
)
from confluence_rag.search.service import SearchService
from confluence_rag.search.validation import MAX_LIMIT
from confluence_rag.settings import Settings
from confluence_rag.store import open_store
from tests.search.hash_embedder import HashEmbedder
from tests.store import builders as b


def _row(chunk_id: int, page: str, title: str, text: str) -> ChunkRow:
    return ChunkRow(
        chunk_id=chunk_id,
        page_id=int(page, 36),
        ordinal=chunk_id,
        content_hash=f"h{chunk_id}",
        token_count=len(text.split()),
        confluence_page_id=page,
        text=text,
        heading_path=(),
        page_key=f"s:{page}",
        title=title,
        url=f"https://wiki/{page}",
        breadcrumb=f"S > {title}",
        space_key="S",
        source_id="s",
        labels=(),
        page_type="page",
        updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def _fused(chunk_id: int, keyword: int | None, semantic: int | None) -> Fused[int]:
    score = sum(1 / (60 + rank) for rank in (keyword, semantic) if rank is not None)
    return Fused(chunk_id, score, (keyword, semantic))


def test_titles_compare_without_case_punctuation_or_spacing() -> None:
    assert normalised_title("dispatch-api: Loads  endpoints") == "dispatch api loads endpoints"
    assert normalised_title("ADR-004: Kafka for telemetry_ingest!") == (
        "adr 004 kafka for telemetry ingest"
    )
    assert normalised_title("  ") == ""


def test_the_page_titled_as_the_query_comes_first_above_pages_that_only_mention_it() -> None:
    rows = {
        1: _row(1, "10", "Runbooks", "See Rolling Back a Failed Deployment for every service."),
        2: _row(2, "11", "On-call Handbook", "Roll back first: rolling back a failed deployment"),
        3: _row(3, "12", "Rolling Back a Failed Deployment", "Steps: argocd app rollback."),
    }
    fused = [_fused(1, 1, 1), _fused(2, 2, 2), _fused(3, 3, 5)]
    ranked = rank_chunks("rolling back a failed deployment", fused, rows, {}, weak_below=0.3)
    assert [hit.row.chunk_id for hit in ranked] == [3, 1, 2]
    assert ranked[0].score == fused[2].score + TITLE_BONUS
    # the two that hold the phrase verbatim keep their fused order, one tier up
    assert ranked[1].score == fused[0].score + PHRASE_BONUS
    scores = [hit.score for hit in ranked]
    assert scores == sorted(scores, reverse=True)


def test_weak_is_what_only_the_embedding_found_and_not_closely() -> None:
    rows = {i: _row(i, str(i), f"Page {i}", f"text {i}") for i in (1, 2, 3, 4)}
    fused = [_fused(1, 1, None), _fused(2, None, 1), _fused(3, None, 2), _fused(4, 2, 3)]
    cosines = {2: 0.55, 3: 0.12, 4: 0.05}
    ranked = rank_chunks("zzqxv plorkified", fused, rows, cosines, weak_below=0.3)
    weak = {hit.row.chunk_id: hit.weak for hit in ranked}
    assert weak == {1: False, 2: False, 3: True, 4: False}


def test_equal_scores_are_ordered_by_chunk_id_and_deleted_rows_are_dropped() -> None:
    rows = {i: _row(i, str(i), f"Page {i}", "same") for i in (5, 7, 9)}
    fused = [_fused(9, 1, None), _fused(7, None, 1), _fused(5, 1, None), _fused(6, 2, 2)]
    ranked = rank_chunks("q", fused, rows, {7: 0.9}, weak_below=0.3)
    assert [hit.row.chunk_id for hit in ranked] == [5, 7, 9]


def test_pages_take_their_best_chunk_and_collect_the_rest_best_first() -> None:
    rows = {
        1: _row(1, "A", "A", "a1"),
        2: _row(2, "B", "B", "b1"),
        3: _row(3, "A", "A", "a2"),
        4: _row(4, "C", "C", "c1"),
        5: _row(5, "B", "B", "b2"),
    }
    fused = [_fused(i, i, i) for i in (1, 2, 3, 4, 5)]
    ranked = rank_chunks("q", fused, rows, {}, weak_below=0.3)
    pages = group_by_page(ranked, limit=2)
    assert [page.best.row.page_key for page in pages] == ["s:A", "s:B"]
    assert [row.text for row in pages[0].others] == ["a2"]
    assert [row.text for row in pages[1].others] == ["b2"]
    assert group_by_page(ranked, limit=5)[:2] == pages


# --- over a real index ---------------------------------------------------------------------

Searcher = Callable[..., list[SearchHit]]
WORDS = "deploy rollback helm postgres vacuum vault rotate key api dashboard lunch argo".split()


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Searcher]:
    """60 pages of 3 chunks drawn from a small vocabulary (so many scores tie), in a real
    SQLite file; one event loop for the module, so hypothesis can call into it."""
    config = Settings(data_dir=tmp_path_factory.mktemp("ranking"))
    embedder = HashEmbedder()
    store = open_store(config)

    async def fill() -> None:
        await store.ensure_index_model(embedder.model_id, embedder.dimension)
        await store.create_source(b.source())
        for page in range(60):
            texts = [
                " ".join(WORDS[(page * 7 + part * 3 + i) % len(WORDS)] for i in range(5))
                for part in range(3)
            ]
            doc = b.document(str(page + 1), title=f"{WORDS[page % len(WORDS)]} notes {page}")
            parts = b.chunks(doc, texts)
            vectors = await embedder.embed_documents([c.embed_text for c in parts])
            await store.write_page(b.SOURCE, doc, parts, vectors)

    with asyncio.Runner() as runner:
        exits = contextlib.AsyncExitStack()
        runner.run(exits.enter_async_context(store))
        try:
            runner.run(fill())
            service = SearchService(store, embedder, config)
            yield lambda query, **options: runner.run(service.search(query, **options))
        finally:
            runner.run(exits.aclose())


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from([*WORDS, "zzqxv", "notes", "7"]), min_size=1, max_size=4),
    limit=st.integers(min_value=1, max_value=MAX_LIMIT - 1),
    more=st.integers(min_value=1, max_value=40),
    mode=st.sampled_from(["chunks", "pages"]),
    retriever=st.sampled_from(["hybrid", "keyword", "semantic"]),
)
def test_the_top_k_is_a_prefix_of_the_top_k_plus_n_and_in_score_order(
    indexed: Searcher, words: list[str], limit: int, more: int, mode: str, retriever: str
) -> None:
    query = " ".join(words)
    options = {"mode": mode, "retriever": retriever}
    short = indexed(query, limit=limit, **options)
    longer = indexed(query, limit=min(limit + more, MAX_LIMIT), **options)
    assert [(h.chunk_id, h.score) for h in short] == [
        (h.chunk_id, h.score) for h in longer[: len(short)]
    ]
    assert len(short) == min(limit, len(longer))
    scores = [h.score for h in longer]
    assert scores == sorted(scores, reverse=True)


def test_an_exact_title_ranks_its_page_first_in_every_mode(indexed: Searcher) -> None:
    for retriever in ("hybrid", "keyword", "semantic"):
        for mode in ("chunks", "pages"):
            hits = indexed("Vault notes 5", mode=mode, retriever=retriever, limit=5)
            assert hits[0].title == "vault notes 5", (mode, retriever)
