"""/api/progress: follow, stream and cancel crawl and sync jobs.

A ``progress_id`` is a persisted job id, so progress survives a restart of the server and is the
same whether the job runs here or in another process (a CLI crawl, a worker).

Polling is cheap: every answer carries an ``ETag`` (a hash of the body) and ``X-Poll-Interval``
(seconds to wait before asking again); a client that sends ``If-None-Match`` gets ``304`` with
no body while nothing changed. ``/events`` pushes one server-sent event per change instead and
ends after the job's final state.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent

from confluence_rag.api.deps import ServicesDep, get_services
from confluence_rag.api.schemas import ProgressList, ProgressOut, progress_out
from confluence_rag.records import JobRecord
from confluence_rag.services import Services

router = APIRouter(prefix="/api/progress", tags=["progress"])

# Seconds a poller should wait: short while a job moves, long once it is over.
POLL_ACTIVE_SECONDS = 1
POLL_FINISHED_SECONDS = 60
TERMINAL = ("completed", "failed", "cancelled")
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such job"}}


async def _job(progress_id: str, services: Annotated[Services, Depends(get_services)]) -> JobRecord:
    # A dependency, so an unknown id is a 404 before an event stream starts.
    return await services.jobs.get(progress_id)


JobDep = Annotated[JobRecord, Depends(_job)]


@router.get("", response_model=ProgressList)
async def list_active(services: ServicesDep) -> ProgressList:
    """Jobs queued or running now."""
    jobs = [progress_out(job) for job in await services.jobs.list(active_only=True)]
    return ProgressList(jobs=jobs, count=len(jobs))


@router.get(
    "/{progress_id}",
    response_model=ProgressOut,
    responses={**NOT_FOUND, 304: {"description": "Not modified since the ETag sent"}},
)
async def get_progress(job: JobDep, request: Request, response: Response) -> ProgressOut | Response:
    """The job's state; send ``If-None-Match`` with the last ``ETag`` to get 304 when unchanged."""
    body = progress_out(job)
    etag = _etag(body)
    headers = {
        "ETag": etag,
        "X-Poll-Interval": str(
            POLL_FINISHED_SECONDS if job.status in TERMINAL else POLL_ACTIVE_SECONDS
        ),
        "Cache-Control": "no-cache",
    }
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return body


@router.get(
    "/{progress_id}/events",
    response_class=EventSourceResponse,
    responses=NOT_FOUND,
)
async def stream_progress(job: JobDep, services: ServicesDep) -> AsyncIterable[ServerSentEvent]:
    """Server-sent events: a ``progress`` event (the job, as ``GET``) per change, then one
    ``end`` event (``{"status": ...}``) after the final state, and the stream closes."""
    sequence = 0
    final = job.status
    async for current in services.jobs.watch(job.id):
        sequence += 1
        final = current.status
        data = progress_out(current).model_dump(mode="json")
        yield ServerSentEvent(data=data, event="progress", id=str(sequence))
    yield ServerSentEvent(data={"status": final}, event="end", id=str(sequence + 1))


@router.post("/{progress_id}/cancel", response_model=ProgressOut, responses=NOT_FOUND)
async def cancel(progress_id: str, services: ServicesDep) -> ProgressOut:
    """Ask the job to stop (idempotent). What it stored so far stays stored."""
    return progress_out(await services.jobs.cancel(progress_id))


def _etag(body: ProgressOut) -> str:
    digest = hashlib.sha256(body.model_dump_json().encode()).hexdigest()[:32]
    return f'"{digest}"'


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return etag in candidates
