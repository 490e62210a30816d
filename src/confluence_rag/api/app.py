"""The HTTP API application factory.

``create_app(settings)`` builds a FastAPI app whose lifespan opens the services from those
settings (store, migrations, lazy embedder, job runner), starts running jobs in this process and
the sync scheduler (``ingest/scheduler.py``), and on shutdown stops them cleanly (interrupted
jobs are re-queued and resume on the next start).
Nothing is built at import time, so tests build several apps with different settings.

A caller that already holds running services (``confluence-rag demo`` crawls first, then serves
the same index with the same loaded model) passes them in; it then owns their lifetime.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from confluence_rag import __version__
from confluence_rag.api.access import AccessMiddleware
from confluence_rag.api.deps import require_api_token
from confluence_rag.api.errors import install_error_handlers
from confluence_rag.api.limits import MAX_BODY_BYTES, BodySizeLimitMiddleware
from confluence_rag.api.openapi import install_openapi
from confluence_rag.api.routes import health, pages, progress, search, sources
from confluence_rag.mcp.server import mount_mcp
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings
from confluence_rag.web.views import mount_web

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Crawl Confluence spaces into a local index and search it. Every error answers "
    '`{"error": {"code", "message", "details"}}`. When `CONFLUENCE_RAG_API_TOKEN` is set, '
    "`/api` calls need `Authorization: Bearer <token>`."
)


def create_app(
    settings: Settings,
    *,
    services: Services | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """The API for ``settings``; ``services`` (optional) are used as they are, not closed here."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services is not None:
            app.state.services = services
            # The caller's runner runs jobs; scheduled syncs run while this app serves.
            services.scheduler.start()
            try:
                yield
            finally:
                await services.scheduler.stop()
            return
        async with build_services(settings) as built:
            built.jobs.start()
            built.scheduler.start()  # first check at once: a sync missed while down runs now
            app.state.services = built
            logger.info("API ready (data in %s)", settings.data_dir)
            try:
                yield
            finally:
                # build_services' exit stops these too; stopping first keeps the order
                # explicit: no new sync is queued, then jobs are re-queued, then the store closes.
                await built.scheduler.stop()
                await built.jobs.stop()
                app.state.services = None

    app = FastAPI(
        title="confluence-rag",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.services = None
    install_error_handlers(app)
    # Added last, so it runs first: an oversized body is refused before anything reads it.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=max_body_bytes)
    # Outermost: with an API token, nothing but /health, /login and /static answers without it.
    app.add_middleware(AccessMiddleware, token=settings.api_token)

    protected = [Depends(require_api_token)]
    app.include_router(sources.router, dependencies=protected)
    app.include_router(progress.router, dependencies=protected)
    app.include_router(search.router, dependencies=protected)
    app.include_router(pages.router, dependencies=protected)
    app.include_router(health.router)
    mount_web(app)  # web UI at / (server-rendered pages + /static), after the API routes
    mount_mcp(app)  # MCP over streamable HTTP at /mcp (API token enforced there)
    install_openapi(app)
    return app
