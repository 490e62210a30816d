"""/health: is the database reachable, is the model loaded, which model built the index.

Never loads the embedding model (that takes seconds and would make a health probe slow); it
reports whether this process has loaded it yet. Always answers 200 when the process is up, with
``status: degraded`` if the database cannot be read, so a probe can tell the two apart.
"""

from __future__ import annotations

from fastapi import APIRouter

from confluence_rag.api.deps import ServicesDep
from confluence_rag.services import HealthReport

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthReport)
async def health(services: ServicesDep) -> HealthReport:
    return await services.health()
