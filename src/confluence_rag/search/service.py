"""Query -> hits: keyword and vector candidates, fused, fetched, grouped, highlighted.

    svc = SearchService(store, embedder, settings)
    hits = await svc.search("rotate the api key", filters=SearchFilters(spaces=("OPS",)))

- ``retriever="hybrid"`` (default) runs the keyword search and the query embedding at the same
  time, then the vector search, and fuses both lists with RRF (``settings.rrf_k``,
  ``settings.keyword_weight`` / ``semantic_weight``), ``settings.search_candidates`` each.
  The hit score is the fused RRF score. ``keyword`` / ``semantic`` use one retriever; the
  score is then its own (negated bm25 / cosine).
- ``match_type`` says which retrievers found the chunk: ``keyword``, ``semantic`` or ``both``.
- A chunk holding the whole query verbatim (a pasted identifier or log line) is put first;
  see ``_exact_first``.
- ``mode="pages"`` returns one hit per page: its best chunk, with the page's other matching
  chunks (best first) in ``more_chunks``.
- Hits are fetched through the store, which re-checks that the page is live; a chunk deleted
  since the candidates were computed is simply not returned.
- Before the first vector search the embedder is checked against the model that built the
  index: a different model or dimension is ``IndexModelMismatch``, never silent garbage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np

from confluence_rag.errors import IndexModelMismatch, InvalidInput
from confluence_rag.index.embedders import Embedder
from confluence_rag.records import ChunkRow, SearchFilters
from confluence_rag.search.fusion import Fused, reciprocal_rank_fusion
from confluence_rag.search.models import CodeHit, MatchType, SearchHit, SearchMode
from confluence_rag.search.snippets import Highlighter
from confluence_rag.search.validation import check_limit, checked_filters, checked_query
from confluence_rag.settings import Settings
from confluence_rag.store import Store
from confluence_rag.store.query_terms import STOPWORDS, query_terms

Retriever = Literal["hybrid", "keyword", "semantic"]
RETRIEVERS: tuple[str, ...] = ("hybrid", "keyword", "semantic")
MODES: tuple[str, ...] = ("chunks", "pages")
# Pages mode groups chunks: look at more candidates so `limit` distinct pages can be filled.
PAGES_CANDIDATE_FACTOR = 3
# Reads of candidates + rows tried before answering with what is left (pages rewritten meanwhile).
REREAD_ATTEMPTS = 3


class SearchService:
    """Hybrid search over one store with one embedder."""

    def __init__(self, store: Store, embedder: Embedder, settings: Settings) -> None:
        self._store = store
        self._embedder = embedder
        self._settings = settings
        self._model_checked = False

    async def search(
        self,
        query: str,
        filters: SearchFilters | None = None,
        limit: int = 10,
        mode: SearchMode = "chunks",
        retriever: Retriever = "hybrid",
    ) -> list[SearchHit]:
        """Best hits for ``query``; ``InvalidInput`` for an empty query or a bad option."""
        query = checked_query(query)
        check_limit(limit)
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {list(MODES)}, got {mode!r}")
        if retriever not in RETRIEVERS:
            raise InvalidInput(f"retriever must be one of {list(RETRIEVERS)}, got {retriever!r}")
        filters = checked_filters(filters or SearchFilters())
        depth = self._settings.search_candidates
        if mode == "pages":
            depth = min(depth * PAGES_CANDIDATE_FACTOR, 1000)
        depth = max(depth, limit)

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
            wanted = fused if mode == "pages" else fused[: limit * 2]
            fetched = await self._store.fetch_chunks([f.id for f in wanted])
            rows = {row.chunk_id: row for row in fetched}
            if len(rows) == len(wanted):
                break
        own_scores = dict(keyword if retriever == "keyword" else semantic)
        highlighter = Highlighter(query_terms(query))
        ranked = _exact_first(query, [(f, rows[f.id]) for f in wanted if f.id in rows])

        def score_of(item: Fused[int]) -> float:
            return item.score if retriever == "hybrid" else own_scores.get(item.id, 0.0)

        if mode == "chunks":
            return [
                _hit(row, score_of(f), _match_type(f), highlighter) for f, row in ranked[:limit]
            ]
        return _group_by_page(ranked, limit, highlighter, score_of)

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


_SPACES = re.compile(r"\s+")
_CONNECTED = re.compile(r"\w[_.\-/:]\w")


def _exact_first(
    query: str, ranked: list[tuple[Fused[int], ChunkRow]]
) -> list[tuple[Fused[int], ChunkRow]]:
    """Chunks containing the whole query verbatim (case and spacing aside) go first.

    RRF only sees ranks: a pasted identifier or error message that one chunk holds verbatim
    is keyword rank 1 but may be absent from the semantic list, and chunks ranked fairly in
    both would outrank it. Someone who pastes ``halcyon_vortex_42`` or a log line wants the
    chunk that has it. Applies to multi-word queries and connected tokens (``a_b``, ``a.b``,
    ``a-b``, ``a/b``), not to one plain word (or one word among stop words), where verbatim
    presence says little.
    """
    needle = _SPACES.sub(" ", query.strip().lower())
    meaningful = [t for t in query_terms(query) if t not in STOPWORDS]
    if len(needle) < 4 or (len(meaningful) < 2 and not _CONNECTED.search(needle)):
        return ranked
    # One compiled search per chunk (any whitespace between the query's words).
    pattern = re.compile(r"\s+".join(re.escape(part) for part in needle.split(" ")), re.I)
    exact: list[tuple[Fused[int], ChunkRow]] = []
    rest: list[tuple[Fused[int], ChunkRow]] = []
    for item in ranked:
        (exact if pattern.search(item[1].text) else rest).append(item)
    return exact + rest


def _match_type(fused: Fused[int]) -> MatchType:
    keyword, semantic = fused.found_in(0), fused.found_in(1)
    if keyword and semantic:
        return "both"
    return "keyword" if keyword else "semantic"


def _hit(
    row: ChunkRow,
    score: float,
    match_type: MatchType,
    highlighter: Highlighter,
    more: tuple[str, ...] = (),
) -> SearchHit:
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
        score=score,
        match_type=match_type,
        snippet_html=highlighter(row.text),
        more_chunks=more,
    )


def _group_by_page(
    ranked: Sequence[tuple[Fused[int], ChunkRow]],
    limit: int,
    highlighter: Highlighter,
    score_of: Callable[[Fused[int]], float],
) -> list[SearchHit]:
    pages: dict[str, list[tuple[Fused[int], ChunkRow]]] = {}
    for fused, row in ranked:
        pages.setdefault(row.page_key, []).append((fused, row))
    hits = []
    for group in list(pages.values())[:limit]:
        best, row = group[0]
        others = tuple(other.text for _, other in group[1:])
        match_types = {_match_type(f) for f, _ in group}
        match: MatchType = (
            "both" if "both" in match_types or len(match_types) > 1 else _match_type(best)
        )
        hits.append(_hit(row, score_of(best), match, highlighter, others))
    return hits
