"""The one wiring point: settings in, ready-to-use services out.

The HTTP API, the CLI, the MCP server and the web UI all call ``build_services(settings)`` and
use what it yields; none of them builds a store, an embedder or a job runner itself, so every
surface behaves the same and tests can build several side by side with different settings.

    async with build_services(settings) as services:
        source, job = await services.sources.add(NewSource(...))
        services.jobs.start()                  # run jobs in this process (serve, CLI crawl)
        services.scheduler.start()             # serve only: queue syncs of due sources
        done = await services.jobs.wait(job.id)
        hits = await services.search.search("how do I deploy")
        page = await services.pages.find(url="https://example.atlassian.net/wiki/...")
        filters = await services.filters.check(SearchFilters(spaces=("DEV",)))

Surfaces (api, web, mcp, cli) use only what is on ``Services``: none of them touches the store.

The embedder is created on first use (loading a model takes seconds; ``sources`` or ``delete``
never need it). Leaving the context stops this process's jobs (they resume on the next start),
closes the embedder if it was created here, and closes the store.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from confluence_rag import __version__
from confluence_rag.errors import ConfluenceRagError
from confluence_rag.filters import FilterService
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.ingest.crawl import CrawlJob
from confluence_rag.ingest.jobs import JobRunner
from confluence_rag.ingest.scheduler import SyncScheduler
from confluence_rag.ingest.sources import SourceService
from confluence_rag.ingest.sync import SyncJob
from confluence_rag.pages import PageService
from confluence_rag.records import JobRecord, StoreDiagnosis
from confluence_rag.settings import Settings
from confluence_rag.store import Store, diagnose, open_store

if TYPE_CHECKING:
    from confluence_rag.search.service import SearchService

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HealthReport:
    """What ``/health`` answers: never loads the model, never fails when the process is up."""

    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "error"]
    database_error: str | None
    backend: Literal["sqlite", "postgresql"]
    model_loaded: bool
    embedder: str
    index_model: str | None
    index_dimension: int | None
    jobs_running: int


class Services:
    """Everything a surface needs, built from one Settings."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        embedder: Embedder | None = None,
        client_factory: Any = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self._embedder = embedder
        self._owns_embedder = embedder is None
        self._search: SearchService | None = None
        self.jobs = JobRunner(store, settings)
        extra = {} if client_factory is None else {"client_factory": client_factory}
        self.sources = SourceService(store, settings, self.jobs, **extra)
        self.pages = PageService(store, self.sources)
        self.filters = FilterService(self.sources)
        crawl = CrawlJob(store, self.sources, lambda: self.embedder, settings)
        self.jobs.register("crawl", crawl)
        self.jobs.register(
            "sync", SyncJob(store, self.sources, lambda: self.embedder, settings, crawl)
        )
        # Started by whoever serves (the API lifespan): queues syncs of due sources.
        self.scheduler = SyncScheduler(store, self.jobs, settings)

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = create_embedder(self.settings)
        return self._embedder

    @property
    def embedder_loaded(self) -> bool:
        """Whether the embedder exists yet (``/health`` reports it without loading a model)."""
        return self._embedder is not None

    @property
    def search(self) -> SearchService:
        if self._search is None:
            from confluence_rag.search.service import SearchService

            self._search = SearchService(
                self.store, self.embedder, self.settings, filter_check=self.filters
            )
        return self._search

    async def active_job(self, source_id: str) -> JobRecord | None:
        """The source's queued or running job, if any (what its status line shows)."""
        active = await self.jobs.list(active_only=True, source_id=source_id)
        return active[0] if active else None

    async def health(self) -> HealthReport:
        """Database readable? Model loaded? Which model built the index? Reading the index
        model is the database probe: an error there is ``degraded``, never an exception."""
        database_error: str | None = None
        index_model = None
        try:
            index_model = await self.store.get_index_model()
        except ConfluenceRagError as error:
            database_error = error.message
            logger.warning("health check: database not readable: %s", error.message)
        settings = self.settings
        if settings.embedder == "local":
            embedder = "local (all-MiniLM-L6-v2)"
        else:
            embedder = f"openai ({settings.openai_model})"
        return HealthReport(
            status="ok" if database_error is None else "degraded",
            version=__version__,
            database="ok" if database_error is None else "error",
            database_error=database_error,
            backend="postgresql" if settings.database_url else "sqlite",
            model_loaded=self.embedder_loaded,
            embedder=embedder,
            index_model=index_model.model_id if index_model else None,
            index_dimension=index_model.dimension if index_model else None,
            jobs_running=len(self.jobs.running_here),
        )

    async def aclose(self) -> None:
        await self.scheduler.stop()
        await self.jobs.stop()
        if self._owns_embedder and self._embedder is not None:
            await self._embedder.aclose()


@asynccontextmanager
async def build_services(
    settings: Settings, *, embedder: Embedder | None = None, client_factory: Any = None
) -> AsyncIterator[Services]:
    """Open the store (running migrations) and build the services on it.

    ``embedder`` lets a caller share one loaded model (tests, benchmarks); it is then not
    closed here. ``client_factory`` replaces ``ConfluenceClient`` (same signature).
    """
    store = open_store(settings)
    async with store:
        services = Services(settings, store, embedder=embedder, client_factory=client_factory)
        try:
            yield services
        finally:
            await services.aclose()


def diagnose_store(settings: Settings) -> StoreDiagnosis:
    """The store's read-only diagnosis for ``doctor`` (nothing migrated or created)."""
    return diagnose(settings)


def redacted(url: str) -> str:
    """A database URL without its password, for banners and logs (the store knows URLs)."""
    from confluence_rag.store.postgres import redacted as without_password

    return without_password(url)
