"""SearchService over a real store (every backend) with a deterministic embedder."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.errors import IndexModelMismatch, InvalidInput
from confluence_rag.records import SearchFilters
from confluence_rag.search.service import SearchService
from confluence_rag.settings import Settings
from confluence_rag.store import Store
from tests.search.hash_embedder import HashEmbedder
from tests.search.indexed import PAGES, index_pages
from tests.store import builders as b

pytestmark = pytest.mark.anyio


async def test_hybrid_finds_the_page_and_says_which_retrievers_agreed(
    service: SearchService,
) -> None:
    hits = await service.search("restart postgres")
    assert hits[0].title == "Database runbook"
    assert hits[0].match_type == "both"
    assert hits[0].page_id == f"{b.SOURCE}:2"
    assert "<mark>postgres</mark>" in hits[0].snippet_html
    assert hits[0].url.endswith("/pages/2")
    assert hits[0].labels == ("db", "ops")
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


async def test_single_retrievers_rank_by_their_own_list(service: SearchService) -> None:
    keyword = await service.search("vault", retriever="keyword")
    assert [h.title for h in keyword] == ["API keys"]
    assert keyword[0].match_type == "keyword" and keyword[0].score > 0
    semantic = await service.search("vault", retriever="semantic", limit=3)
    assert all(h.match_type == "semantic" for h in semantic)
    assert semantic[0].text == "Keys live in the vault"
    scores = [h.score for h in semantic]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[-1]


async def test_pages_mode_groups_chunks_best_first(service: SearchService) -> None:
    hits = await service.search("helm", mode="pages", limit=5)
    assert len({h.page_id for h in hits}) == len(hits)
    first = hits[0]
    assert first.title == "Deploy guide"
    assert len(first.more_chunks) == 1
    assert "helm" in first.more_chunks[0].lower()


@pytest.mark.parametrize(
    ("filters", "allowed_titles"),
    [
        (SearchFilters(spaces=("OPS",)), {"Database runbook", "API keys"}),
        (SearchFilters(labels=("OPS",)), {"Deploy guide", "Database runbook"}),
        (SearchFilters(page_types=("blogpost",)), {"Team news"}),
        (
            SearchFilters(updated_after=datetime(2025, 2, 15, tzinfo=UTC)),
            {"Team news", "API keys"},
        ),
        (SearchFilters(source_id="other:X"), set()),
        (SearchFilters(source_id=b.SOURCE, spaces=("DEV",), labels=("ops",)), {"Deploy guide"}),
    ],
)
@pytest.mark.parametrize("retriever", ["hybrid", "keyword", "semantic"])
async def test_filters_apply_to_every_retriever(
    service: SearchService, filters: SearchFilters, allowed_titles: set[str], retriever: str
) -> None:
    hits = await service.search(
        "helm postgres dashboard api key restart deploy vault",
        filters=filters,
        limit=20,
        retriever=retriever,  # type: ignore[arg-type]
    )
    titles = {h.title for h in hits}
    assert titles <= allowed_titles
    if retriever != "keyword":
        # the vector side never starves: every allowed page has a chunk in the top 20
        assert titles == allowed_titles


async def test_deleted_pages_never_appear_and_come_back_when_restored(
    service: SearchService, store: Store
) -> None:
    await store.soft_delete_pages(b.SOURCE, ["2"], datetime.now(UTC))
    for retriever in ("hybrid", "keyword", "semantic"):
        hits = await service.search("restart postgres", retriever=retriever, limit=20)  # type: ignore[arg-type]
        assert "Database runbook" not in {h.title for h in hits}
    await store.restore_pages(b.SOURCE, ["2"])
    assert (await service.search("restart postgres"))[0].title == "Database runbook"


async def test_snippets_escape_page_content(service: SearchService) -> None:
    hits = await service.search("dashboard", limit=20)
    (hit,) = [h for h in hits if "dashboard" in h.text]
    assert "<script>" not in hit.snippet_html
    assert "&lt;script&gt;" in hit.snippet_html
    assert "<script>" in hit.text  # the raw text is kept for non-HTML consumers


@pytest.mark.parametrize(
    "query",
    ['"', "'", "*", "AND", "NOT OR", "(", "a:b", "^x", "NEAR(a b)", "-", "col:term", "\\", "'\"*("],
)
async def test_hostile_queries_never_raise(service: SearchService, query: str) -> None:
    hits = await service.search(query)
    assert isinstance(hits, list)


async def test_code_search_with_language_filter(service: SearchService) -> None:
    hits = await service.search_code("helm upgrade", SearchFilters(language="Bash"))
    assert [h.title for h in hits] == ["Deploy guide"]
    assert hits[0].language == "bash" and hits[0].code == "helm upgrade api ./chart"
    assert hits[0].page_id == f"{b.SOURCE}:1"
    assert await service.search_code("helm upgrade", SearchFilters(language="python")) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "   "}, "empty"),
        ({"query": "x" * 2001}, "longer"),
        ({"query": "ok", "limit": 0}, "limit"),
        ({"query": "ok", "limit": 101}, "limit"),
        ({"query": "ok", "mode": "books"}, "mode"),
        ({"query": "ok", "retriever": "magic"}, "retriever"),
    ],
)
async def test_bad_requests_are_clear_errors(
    service: SearchService, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        await service.search(**kwargs)  # type: ignore[arg-type]


async def test_another_model_is_refused_not_silently_searched(
    service: SearchService, store: Store, settings: Settings
) -> None:
    other = SearchService(store, HashEmbedder(dimension=32, model_id="other"), settings)
    with pytest.raises(IndexModelMismatch, match="test-hash-256"):
        await other.search("helm")
    # keyword search does not need the model
    assert await other.search("helm", retriever="keyword")


async def test_empty_index_returns_no_hits(store: Store, settings: Settings) -> None:
    service = SearchService(store, HashEmbedder(), settings)
    assert await service.search("anything") == []


async def test_a_chunk_holding_the_query_verbatim_comes_first(
    store: Store, settings: Settings
) -> None:
    embedder = HashEmbedder()
    await index_pages(store, embedder)
    # Many chunks share the words of the identifier; one holds it verbatim, in a code line.
    texts = [f"retry budget timeout settings part {i}" for i in range(8)]
    texts.append("log line: ERR_retry_budget_timeout_7 raised by the scheduler")
    doc = b.document("50", title="Scheduler errors", space="OPS")
    parts = b.chunks(doc, texts)
    await store.write_page(
        b.SOURCE, doc, parts, await embedder.embed_documents([c.embed_text for c in parts])
    )
    service = SearchService(store, embedder, settings)
    hits = await service.search("ERR_retry_budget_timeout_7")
    assert hits[0].text.startswith("log line: ERR_retry_budget_timeout_7")
    # a single plain word is ranked by fusion alone
    plain = await service.search("timeout")
    assert plain[0].score >= plain[-1].score


class _RewriteBeforeFirstFetch:
    """The real store, with a sync landing between a search's candidate read and its row read:
    page 2 is rewritten (new version, new chunk ids) just before the first ``fetch_chunks``."""

    def __init__(self, store: Store, embedder: HashEmbedder) -> None:
        self._store, self._embedder, self.rewrites = store, embedder, 0

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)

    async def fetch_chunks(self, ids: list[int]) -> object:
        if self.rewrites == 0:
            self.rewrites += 1
            title, space, labels, kind, texts = PAGES["2"]
            doc = b.document("2", title=title, space=space, labels=labels, version=2)
            parts = b.chunks(doc, [texts[0] + " (revised)", texts[1]])
            vectors = await self._embedder.embed_documents([c.embed_text for c in parts])
            await self._store.write_page(b.SOURCE, doc, parts, vectors)
        return await self._store.fetch_chunks(ids)


async def test_a_page_rewritten_mid_search_is_still_found(
    service: SearchService, store: Store, settings: Settings
) -> None:
    embedder = HashEmbedder()
    racing = _RewriteBeforeFirstFetch(store, embedder)
    hits = await SearchService(racing, embedder, settings).search("restart postgres")  # type: ignore[arg-type]
    assert racing.rewrites == 1
    assert hits and hits[0].page_id == f"{b.SOURCE}:2"
    assert "(revised)" in hits[0].text
