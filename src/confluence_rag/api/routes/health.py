"""/health: is the database reachable, is the model loaded, which model built the index.

Never loads the embedding model (that takes seconds and would make a health probe slow); it
reports whether this process has loaded it yet. Always answers 200 when the process is up, with
``status: degraded`` if the database cannot be read, so a probe can tell the two apart.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter

from confluence_rag import __version__
from confluence_rag.api.deps import ServicesDep
from confluence_rag.api.schemas import HealthOut
from confluence_rag.errors import ConfluenceRagError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut)
async def health(services: ServicesDep) -> HealthOut:
    settings = services.settings
    database_error: str | None = None
    index_model = None
    try:
        index_model = await services.store.get_index_model()
    except ConfluenceRagError as error:
        database_error = error.message
        logger.warning("health check: database not readable: %s", error.message)
    if settings.embedder == "local":
        embedder = "local (all-MiniLM-L6-v2)"
    else:
        embedder = f"openai ({settings.openai_model})"
    return HealthOut(
        status="ok" if database_error is None else "degraded",
        version=__version__,
        database="ok" if database_error is None else "error",
        database_error=database_error,
        backend="postgresql" if settings.database_url else "sqlite",
        model_loaded=services.embedder_loaded,
        embedder=embedder,
        index_model=index_model.model_id if index_model else None,
        index_dimension=index_model.dimension if index_model else None,
        jobs_running=len(services.jobs.running_here),
    )
