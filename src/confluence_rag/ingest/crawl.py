"""The crawl job: every page of every space of a source, through the pipeline, into the store.

Stages the job reports: ``checking`` (credentials and every space, before any work),
``processing`` (listing, converting, embedding and storing, all streaming at once),
``finalizing``, then ``done``. A resumed crawl lists again and skips what is already stored at
the listed version, and skips whole spaces its checkpoint records as finished.

A ``sync`` job currently runs this same crawl (list everything, skip unchanged versions);
``ingest/sync.py`` replaces it with an incremental sync (changed since the last sync, deletions)
by registering its own handler for ``kind="sync"``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from confluence_rag.confluence.models import Page
from confluence_rag.content.metadata import should_skip, skip_rules_key, to_document
from confluence_rag.content.models import Document
from confluence_rag.content.storage import ConversionContext
from confluence_rag.index.chunking import chunk_document
from confluence_rag.index.models import Chunk
from confluence_rag.ingest.job_context import JobContext
from confluence_rag.ingest.people import UserDirectory
from confluence_rag.ingest.pipeline import CrawlPlan, PagePipeline, SpaceTarget
from confluence_rag.records import SourceRecord
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

if TYPE_CHECKING:
    from confluence_rag.index.embedders import Embedder
    from confluence_rag.ingest.sources import SourceService

logger = logging.getLogger(__name__)


class CrawlJob:
    """Job handler for ``kind="crawl"``: the whole source (or, for a split crawl, one space)."""

    def __init__(
        self,
        store: Store,
        sources: SourceService,
        embedder: Callable[[], Embedder],
        settings: Settings,
        *,
        converter_workers: int = 1,
    ) -> None:
        self._store = store
        self._sources = sources
        self._embedder = embedder
        self._settings = settings
        self._converter_workers = converter_workers

    async def __call__(self, context: JobContext) -> None:
        progress = context.progress
        source = await self._store.get_source(context.job.source_id)
        credentials = await self._sources.credentials(source.id)
        context.secrets.extend(credentials.auth().secrets())
        # A per-space job of a split crawl (space_split.py) covers only its own space.
        keys = [k for k in source.space_keys if context.spaces is None or k in context.spaces]
        progress.set_stage("checking")
        progress.declare_spaces(keys)
        progress.max_pages = source.max_pages
        embedder = self._embedder()
        async with self._sources.open_client(source) as client:
            spaces = []
            for key in keys:
                space = await client.check_access(key)
                spaces.append(SpaceTarget(key=key, name=space.name))
            context.raise_if_cancelled()
            # One tiny embedding loads the model (off the event loop) before any page is
            # fetched, so a broken model fails the job at once rather than after a long
            # listing; and it tells an OpenAI-compatible model's dimension when not configured.
            probe = await embedder.embed_documents(["confluence-rag model check"])
            await self._store.ensure_index_model(embedder.model_id, int(probe.shape[1]))
            stored = await self._store.page_versions(source.id)
            plan = await self.plan(source, spaces, stored)
            finished = [s.key for s in spaces if progress.is_finished(s.key)]
            if finished:
                progress.log(f"spaces already finished before: {', '.join(finished)}")
            progress.log(
                f"crawling {len(spaces)} space(s) of {source.site_url}: "
                f"{', '.join(s.key for s in spaces)}; {len(stored)} pages already stored"
            )
            progress.set_stage("processing")
            pipeline = PagePipeline(
                plan,
                client=client,
                store=self._store,
                embedder=embedder,
                prepare=self.preparer(
                    source, embedder, client.api_base, UserDirectory(client, note=progress.log)
                ),
                progress=progress,
                batch_size=embedder.batch_size,
                converter_workers=self._converter_workers,
            )
            await pipeline.run()
        progress.set_stage("finalizing")
        counters = progress.counters()
        if counters["pages_failed"]:
            progress.log(f"{counters['pages_failed']} page(s) failed; see the lines above")

    async def plan(
        self,
        source: SourceRecord,
        spaces: list[SpaceTarget],
        stored: dict[str, tuple[int, bool]],
    ) -> CrawlPlan:
        """The pipeline's plan for ``source`` (the sync job builds its plan here too)."""
        rules = skip_rules_key(self._skip_settings(source))
        return CrawlPlan(
            source_id=source.id,
            spaces=tuple(spaces),
            page_types=tuple(source.page_types),
            max_pages=source.max_pages,
            stored_versions=stored,
            skip_rules=rules,
            skipped_versions=await self._store.skipped_versions(source.id),
        )

    def _skip_settings(self, source: SourceRecord) -> Settings:
        """The settings ``should_skip`` reads: the source's own skip rules override them."""
        rules = dict(source.skip_rules or {})
        return self._settings.model_copy(update=rules) if rules else self._settings

    def preparer(
        self,
        source: SourceRecord,
        embedder: Embedder,
        base_url: str,
        people: UserDirectory | None = None,
    ) -> Callable[[Page, str], tuple[Document, list[Chunk]] | str]:
        """Page -> (document, chunks), or the reason to skip it. CPU work: the pipeline runs it
        in a thread. The source's own skip rules override the settings'. ``people`` names the
        users a page mentions (it may wait on the loop for a lookup; see people.py)."""
        settings = self._settings
        skip_settings = self._skip_settings(source)
        context = ConversionContext(base_url=base_url, space_names=dict(source.space_names))
        target = settings.chunk_target_tokens
        limit = min(settings.chunk_max_tokens, embedder.max_tokens)
        count_tokens = embedder.count_tokens

        def prepare(page: Page, space_name: str) -> tuple[Document, list[Chunk]] | str:
            names = people.names_for(page.body_storage) if people is not None else {}
            ctx = replace(context, user_names=names) if names else context
            document = to_document(page, space_name, ctx)
            reason = should_skip(page, document.markdown, skip_settings)
            if reason:
                return reason
            chunks = chunk_document(document, count_tokens, target_tokens=target, max_tokens=limit)
            return document, chunks

        return prepare
