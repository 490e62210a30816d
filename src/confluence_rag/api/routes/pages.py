"""/api/pages/{page_id}: one stored page in full (Markdown + metadata), as search hits link it."""

from __future__ import annotations

from fastapi import APIRouter

from confluence_rag.api.deps import ServicesDep
from confluence_rag.api.schemas import PageOut, page_out

router = APIRouter(prefix="/api/pages", tags=["pages"])


@router.get(
    "/{page_id}",
    response_model=PageOut,
    responses={
        400: {"description": "Not a page id ('<source id>:<confluence page id>')"},
        404: {"description": "No such page"},
    },
)
async def get_page(page_id: str, services: ServicesDep) -> PageOut:
    """The page's full Markdown and metadata; ``page_id`` is a search hit's ``page_id``."""
    return page_out(await services.pages.get(page_id))
