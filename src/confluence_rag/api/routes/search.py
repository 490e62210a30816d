"""/api/search and /api/search/code: hybrid search over the index, with filters.

Input limits (query length, result count, filter list sizes) are checked by the request models,
so an oversized request is a 400 in the standard shape before any model or database work. The
filters then pass ``services.filters.check`` like every surface's: a source or space that is not
indexed is a 400 naming what is, not an empty answer.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from confluence_rag.api.deps import ServicesDep
from confluence_rag.api.schemas import (
    CodeSearchRequest,
    CodeSearchResponse,
    SearchRequest,
    SearchResponse,
    code_hit_out,
    hit_out,
)

router = APIRouter(prefix="/api/search", tags=["search"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid query, filter or limit"},
    409: {"description": "The index was built by another embedding model"},
    503: {"description": "The embedding model is unavailable"},
}


@router.post("", response_model=SearchResponse, responses=ERRORS)
async def search(body: SearchRequest, services: ServicesDep) -> SearchResponse:
    """Chunks (or pages, ``mode=pages``) best matching the query, with highlighted snippets."""
    hits = await services.search.search(
        body.query,
        filters=await services.filters.check(body.to_filters()),
        limit=body.limit,
        mode=body.mode,
        retriever=body.retriever,
    )
    results = [hit_out(hit) for hit in hits]
    return SearchResponse(
        query=body.query,
        mode=body.mode,
        retriever=body.retriever,
        results=results,
        count=len(results),
    )


@router.post("/code", response_model=CodeSearchResponse, responses=ERRORS)
async def search_code(body: CodeSearchRequest, services: ServicesDep) -> CodeSearchResponse:
    """Code examples (from code macros) best matching the query, optionally by language."""
    filters = await services.filters.check(body.to_filters(language=body.language))
    hits = await services.search.search_code(body.query, filters=filters, limit=body.limit)
    results = [code_hit_out(hit) for hit in hits]
    return CodeSearchResponse(query=body.query, results=results, count=len(results))
