"""/api/confluence/sources: add, list, show, change, sync and delete sources.

Thin: each route turns the request into one call on ``services.sources`` / ``services.jobs`` and
the result into a response model. Validation of URLs, keys and credentials is the service's.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from confluence_rag.api.deps import ServicesDep
from confluence_rag.api.schemas import (
    AddSourceRequest,
    AddSourceResponse,
    DeleteResponse,
    SourceList,
    SourceOut,
    SyncResponse,
    UpdateSourceRequest,
    source_out,
)
from confluence_rag.ingest.sources import NewSource
from confluence_rag.records import SourceRecord
from confluence_rag.services import Services

router = APIRouter(prefix="/api/confluence/sources", tags=["sources"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input (URL, space key, field)"},
    404: {"description": "No such source"},
}


@router.post(
    "",
    response_model=AddSourceResponse,
    status_code=status.HTTP_201_CREATED,
    responses={
        **ERRORS,
        401: {"description": "Confluence rejected the credentials"},
        403: {"description": "The account may not read a space"},
        404: {"description": "No such space"},
        409: {"description": "The source already exists"},
        502: {"description": "Confluence unreachable"},
    },
)
async def add_source(body: AddSourceRequest, services: ServicesDep) -> AddSourceResponse:
    """Check the credentials against every space, save the source and queue its first crawl."""
    new = NewSource(
        confluence_url=body.confluence_url,
        api_token=body.api_token,
        space_key=body.space_key,
        space_keys=tuple(body.space_keys),
        user_email=body.user_email,
        flavour=body.flavour,
        knowledge_type=body.knowledge_type,
        tags=tuple(body.tags),
        page_types=tuple(body.page_types),
        max_pages=body.max_pages,
        sync_frequency_hours=body.sync_frequency_hours,
    )
    source, job = await services.sources.add(new, start=body.start_crawl)
    return AddSourceResponse(
        source_id=source.id,
        progress_id=job.id if job is not None else None,
        status=job.status if job is not None else "added",
    )


@router.get("", response_model=SourceList)
async def list_sources(services: ServicesDep) -> SourceList:
    """Every source with its sync state, counts and the job running for it, if any."""
    records = await services.sources.list()
    sources = [await describe_source(services, record) for record in records]
    return SourceList(sources=sources, count=len(sources))


@router.get("/{source_id}", response_model=SourceOut, responses=ERRORS)
async def get_source(source_id: str, services: ServicesDep) -> SourceOut:
    return await describe_source(services, await services.sources.get(source_id))


@router.patch("/{source_id}", response_model=SourceOut, responses=ERRORS)
async def update_source(
    source_id: str, body: UpdateSourceRequest, services: ServicesDep
) -> SourceOut:
    """Change the automatic sync period or pause/resume automatic syncs."""
    changes = body.changes()
    record = (
        await services.sources.update(source_id, **changes)
        if changes
        else await services.sources.get(source_id)
    )
    return await describe_source(services, record)


@router.delete("/{source_id}", response_model=DeleteResponse, responses=ERRORS)
async def delete_source(source_id: str, services: ServicesDep) -> DeleteResponse:
    """Cancel its job, then remove its pages, chunks, code examples and credentials."""
    await services.sources.delete(source_id)
    return DeleteResponse(source_id=source_id, deleted=True)


@router.post(
    "/{source_id}/sync",
    response_model=SyncResponse,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**ERRORS, 409: {"description": "A job runs already (details.progress_id)"}},
)
async def sync_source(source_id: str, services: ServicesDep) -> SyncResponse:
    """Queue a sync now; 409 with the running job's ``progress_id`` if one is active."""
    job = await services.jobs.submit(source_id, "sync")
    return SyncResponse(source_id=source_id, progress_id=job.id, status=job.status)


async def describe_source(services: Services, record: SourceRecord) -> SourceOut:
    """The response for one source: the record, its active job and its page/chunk counts."""
    return source_out(record, active_job=await services.active_job(record.id))
