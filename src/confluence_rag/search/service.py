"""Query -> hits: keyword and vector candidates, fused, fetched, grouped, highlighted.

    svc = SearchService(store, embedder, settings)
    hits = await svc.search("rotate the api key", filters=SearchFilters(spaces=("OPS",)))

- ``retriever="hybrid"`` (default) runs the keyword search and the query embedding at the same
  time, then the vector search, and fuses both lists with RRF (``settings.rrf_k``,
  ``settings.keyword_weight`` / ``semantic_weight``), ``settings.search_candidates`` each
  (at least ``MAX_LIMIT``, whatever ``limit`` asks: one query, one order). ``keyword`` /
  ``semantic`` use one retriever.
- ``ranking.rank_chunks`` scores every candidate: the fused score, plus tiers for a page whose
  title is the query and a chunk holding the whole query verbatim. The score shown is the
  score ranked by; ``weak`` marks what only the embedding found, and weakly.
- ``match_type`` says which retrievers found the chunk: ``keyword``, ``semantic`` or ``both``.
- ``mode="pages"`` returns one hit per page: its best chunk, with the page's other matching
  chunks (best first) in ``more_chunks``.
- Hits are fetched through the store, which re-checks that the page is live; a chunk deleted
  since the candidates were computed is simply not returned.
- Before the first vector search the embedder is checked against the model that built the
  index: a different model or dimension is ``IndexModelMismatch``, never silent garbage.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Literal, Protocol

import numpy as np

from confluence_rag.errors import IndexModelMismatch, InvalidInput
from confluence_rag.index.embedders import Embedder
from confluence_rag.records import SearchFilters
from confluence_rag.search.fusion import reciprocal_rank_fusion
from confluence_rag.search.models import CodeHit, MatchType, SearchHit, SearchMode
from confluence_rag.search.query_syntax import ParsedQuery, admits, parse_query
from confluence_rag.search.ranking import RankedChunk, group_by_page, rank_chunks
from confluence_rag.search.snippets import Highlighter
from confluence_rag.search.validation import (
    MAX_LIMIT,
    check_limit,
    checked_filters,
    checked_query,
    space_key,
)
from confluence_rag.settings import Settings
from confluence_rag.store import Store
from confluence_rag.store.query_terms import query_terms

Retriever = Literal["hybrid", "keyword", "semantic"]
RETRIEVERS: tuple[str, ...] = ("hybrid", "keyword", "semantic")
MODES: tuple[str, ...] = ("chunks", "pages")
# Pages mode groups chunks: look at more candidates so `limit` distinct pages can be filled.
PAGES_CANDIDATE_FACTOR = 3
# Reads of candidates + rows tried before answering with what is left (pages rewritten meanwhile).
REREAD_ATTEMPTS = 3


class FilterCheck(Protocol):
    """What checks a search's filters against the index (``confluence_rag.filters``)."""

    async def check(self, filters: SearchFilters) -> SearchFilters: ...


class SearchService:
    """Hybrid search over one store with one embedder."""

    def __init__(
        self,
        store: Store,
        embedder: Embedder,
        settings: Settings,
        filter_check: FilterCheck | None = None,
    ) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings
        self._filter_check = filter_check
        self._model_checked = False

    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        limit: int = 10,
        mode: SearchMode = "pages",
        retriever: Retriever = "hybrid",
    ) -> list[SearchHit]:
        """Best hits for ``query`` (its operators applied, see ``query_syntax``);
        ``InvalidInput`` for an empty query, a bad option or an operator value that names
        nothing."""
        parsed = _parsed(query)
        query = parsed.text
        check_limit(limit)
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {list(MODES)}, got {mode!r}")
        if retriever not in RETRIEVERS:
            raise InvalidInput(f"retriever must be one of {list(RETRIEVERS)}, got {retriever!r}")
        narrowed = await self._narrowed(filters or SearchFilters(), parsed)
        if narrowed is None:
            return []  # the operators and the filters exclude each other
        filters = narrowed
        # The same candidates whatever the limit, so the top k is a prefix of the top k + n.
        factor = PAGES_CANDIDATE_FACTOR if mode == "pages" else 1
        depth = max(self._settings.search_candidates * factor, MAX_LIMIT)

        # Candidates and their rows are two reads: a page rewritten in between (a sync) gets new
        # chunk ids, so its old ids fetch nothing. Asking again then sees the new page whole,
        # rather than leaving it out of this answer.
        for _ in range(REREAD_ATTEMPTS):
            keyword, semantic = await self._candidates(query, filters, depth, retriever)
            fused = reciprocal_rank_fusion(
                [keyword, semantic],
                k=self._settings.rrf_k,
                weights=[self._settings.keyword_weight, self._settings.semantic_weight],
            )
            fetched = await self._store.fetch_chunks([f.id for f in fused])
            rows = {row.chunk_id: row for row in fetched}
            if len(rows) == len(fused):
                break
        ranked = rank_chunks(
            query, fused, rows, dict(semantic), self._settings.search_weak_similarity
        )
        if parsed.has_operators:
            ranked = [hit for hit in ranked if admits(parsed, hit.row)]
        highlighter = Highlighter(query_terms(query))
        if mode == "chunks":
            return [_hit(hit, highlighter) for hit in ranked[:limit]]
        return [
            _hit(page.best, highlighter, page.match_type, tuple(row.text for row in page.others))
            for page in group_by_page(ranked, limit)
        ]

    async def _narrowed(self, filters: SearchFilters, parsed: ParsedQuery) -> SearchFilters | None:
        """``filters`` with the query's operators, checked; None if nothing can match."""
        narrowed = with_operators(filters, parsed)
        if narrowed is None:
            return None
        narrowed = checked_filters(narrowed)
        if self._filter_check is not None and parsed.has_operators:
            # a space named in the query is checked as one named in a filter is
            narrowed = await self._filter_check.check(narrowed)
        return narrowed

    async def search_code(
        self, query: str, filters: SearchFilters | None = None, limit: int = 10
    ) -> list[CodeHit]:
        """Code examples matching ``query`` (``filters.language`` narrows the language)."""
        query = checked_query(query)
        check_limit(limit)
        filters = checked_filters(filters or SearchFilters())
        candidates = await self._store.code_candidates(query, filters, limit * 2)
        scores = dict(candidates)
        rows = await self._store.fetch_code([code_id for code_id, _ in candidates])
        return [
            CodeHit(
                code_id=row.code_id,
                language=row.language,
                code=row.code,
                line_count=row.line_count,
                heading_path=row.heading_path,
                page_id=row.page_key,
                title=row.title,
                url=row.url,
                breadcrumb=row.breadcrumb,
                space_key=row.space_key,
                source_id=row.source_id,
                score=scores[row.code_id],
            )
            for row in rows[:limit]
        ]

    async def _candidates(
        self, query: str, filters: SearchFilters, depth: int, retriever: Retriever
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """``(keyword, semantic)`` candidates; the retriever not asked for stays empty."""
        if retriever == "keyword":
            return await self._store.keyword_candidates(query, filters, depth), []
        if retriever == "semantic":
            return [], await self._semantic(query, filters, depth)
        keyword, semantic = await asyncio.gather(
            self._store.keyword_candidates(query, filters, depth),
            self._semantic(query, filters, depth),
        )
        return keyword, semantic

    async def _semantic(
        self, query: str, filters: SearchFilters, depth: int
    ) -> list[tuple[int, float]]:
        await self._check_model()
        vector = np.asarray(await self._embedder.embed_query(query), dtype=np.float32)
        return await self._store.vector_candidates(vector, filters, depth)

    async def _check_model(self) -> None:
        if self._model_checked:
            return
        recorded = await self._store.get_index_model()
        if recorded is not None and (recorded.model_id, recorded.dimension) != (
            self._embedder.model_id,
            self._embedder.dimension,
        ):
            raise IndexModelMismatch(
                f"this index was built with {recorded.model_id!r} ({recorded.dimension} "
                f"dimensions) but search is configured with {self._embedder.model_id!r} "
                f"({self._embedder.dimension} dimensions): configure the model that built the "
                "index, or rebuild the index (delete the sources and crawl again)",
                details={
                    "index_model": recorded.model_id,
                    "index_dimension": recorded.dimension,
                    "configured_model": self._embedder.model_id,
                    "configured_dimension": self._embedder.dimension,
                },
            )
        # Only a matching, recorded model is remembered: an empty index is checked again later.
        self._model_checked = recorded is not None


def _parsed(query: str) -> ParsedQuery:
    """The query's words and operators; ``InvalidInput`` for a value that means nothing or
    operators with no words. A query of only punctuation is searched as typed."""
    parsed = parse_query(checked_query(query))
    if parsed.problems:
        raise InvalidInput("; ".join(parsed.problems), details={"field": "query"})
    if parsed.has_operators and not parsed.text.strip():
        raise InvalidInput(
            "the query has operators but no words to search for", details={"field": "query"}
        )
    return parsed if parsed.text else replace(parsed, text=query.strip())


def _narrowed(given: tuple[str, ...], wanted: tuple[str, ...]) -> tuple[str, ...] | None:
    """Alternatives from a filter and from the query's operators, both applying: what both
    allow (None if nothing is)."""
    if not given or not wanted:
        return given or wanted
    both = tuple(value for value in given if value.casefold() in {w.casefold() for w in wanted})
    return both or None


def with_operators(filters: SearchFilters, parsed: ParsedQuery) -> SearchFilters | None:
    """``filters`` narrowed by the query's ``space:``, ``label:``, ``type:`` and ``after:``;
    None when they exclude each other."""
    spaces = _narrowed(filters.spaces, tuple(space_key(s) for s in parsed.spaces))
    labels = _narrowed(filters.labels, tuple(label.lower() for label in parsed.labels))
    types = _narrowed(filters.page_types, parsed.types)
    if spaces is None or labels is None or types is None:
        return None
    after = max(
        (moment for moment in (filters.updated_after, parsed.after) if moment is not None),
        default=None,
    )
    return replace(filters, spaces=spaces, labels=labels, page_types=types, updated_after=after)


def _hit(
    hit: RankedChunk,
    highlighter: Highlighter,
    match_type: MatchType | None = None,
    more: tuple[str, ...] = (),
) -> SearchHit:
    row = hit.row
    return SearchHit(
        chunk_id=row.chunk_id,
        text=row.text,
        heading_path=row.heading_path,
        page_id=row.page_key,
        title=row.title,
        url=row.url,
        breadcrumb=row.breadcrumb,
        space_key=row.space_key,
        source_id=row.source_id,
        labels=row.labels,
        page_type=row.page_type,
        updated_at=row.updated_at,
        score=hit.score,
        match_type=match_type or hit.match_type,
        weak=hit.weak,
        snippet_html=highlighter(row.text),
        more_chunks=more,
    )
