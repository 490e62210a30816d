"""The sync job: bring a crawled source up to date, touching only what changed.

Stages the job reports: ``checking`` (credentials, every space, the index's model),
``processing`` (listings, and changed pages through the crawl's pipeline), ``finalizing``
(deletions, retention purge), then ``done``.

How changes are found, per space:

1. **A CQL change window**: ``lastmodified >= last_sync_at - overlap``, formatted in the site's
   time zone (``confluence/cql.py``), with bodies. A page is re-processed only if its version is
   newer than the stored one (the overlap re-lists pages already stored: they cost nothing).
   Its pages are converted, embedded and written while step 2 runs.
2. **A complete, cheap id listing** (ids + versions, no bodies). It is the ground truth for
   deletions, and catches changes no date query sees (a page moved *into* the space keeps its
   ``lastmodified``; a site time zone set wrong by more than the overlap).
3. Pages whose body the window did not carry, and pages only the id listing shows as new or
   changed, are fetched by id.

Changed pages go through the same ``PagePipeline`` as a crawl: re-converted, re-chunked, and
only chunks whose content hash is new are embedded (``chunks_embedded`` vs ``chunks_reused``).
``store.write_page`` replaces a page's rows in one transaction, so a search during a sync sees
the old page or the new one, never a mix or a gap. A sync with no changes makes no embedding
call at all.

Deletions from the listings are decided only after every page was processed and only from
listings that reached their end: a stored page missing from every (complete) listing was
trashed, deleted, moved out of the source's spaces or restricted; a page the listing showed but
that fetching by id no longer returns (404/403: gone or restricted since) is deleted too. If
any listing stopped part-way, nothing is deleted from the listing comparison and the job log
says so. Separately, a stored page whose new version the rules skip (emptied below
``min_page_chars``, archived or made a draft when those are skipped) is deleted as it is
processed: its old text must not keep answering searches. A skipped page is recorded with its
version and the rules' key (``content/metadata.skip_rules_key``), so later syncs and crawls pass
over it, unfetched, until it changes or the rules do; a record goes when its page is stored or
leaves the listings. Deleted pages are soft-deleted
(hidden from search at once) and purged for good after ``settings.deleted_retention_days``. A
page that comes back (restored from the trash, readable again, filled again) is written again
and counted as restored.

A source that never finished a crawl (no ``last_sync_at``) has no window to start from: its sync
is a full crawl (every listed page not stored at that version) plus the deletion check.

A sync that fails leaves what it already wrote (each page atomically, at a newer version), deletes
nothing, and does not move ``last_sync_at`` (the job runner advances it only on completion, to
the attempt's start), so the next sync covers the same window again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from confluence_rag.confluence.models import IdListing
from confluence_rag.errors import ConfluenceError, ConfluenceRagError, JobCancelled
from confluence_rag.ingest.job_context import JobContext
from confluence_rag.ingest.people import UserDirectory
from confluence_rag.ingest.pipeline import PagePipeline, SpaceTarget
from confluence_rag.ingest.progress import JobProgress
from confluence_rag.records import SourceRecord
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

if TYPE_CHECKING:
    from confluence_rag.index.embedders import Embedder
    from confluence_rag.ingest.crawl import CrawlJob
    from confluence_rag.ingest.sources import SourceService

logger = logging.getLogger(__name__)

# Counters that belong to the source as a whole (deletions are decided across all its spaces)
# are kept under this pseudo space key.
SOURCE_WIDE = "*"
# How many ids a log line names before it says "and N more".
LOG_IDS = 10


@dataclass(slots=True)
class SyncPlan:
    """What the lister needs besides the pipeline's plan."""

    since: datetime | None  # last completed sync/crawl start; None = full listing
    space_keys: frozenset[str]
    new_page_budget: int | None  # max_pages minus live pages already stored
    listings: dict[str, IdListing] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)  # ids sent down the pipeline
    gone: set[str] = field(default_factory=set)  # listed, but fetching by id found nothing
    budget_refused: int = 0

    @property
    def listings_complete(self) -> bool:
        return bool(self.listings) and all(item.complete for item in self.listings.values())

    def listed_ids(self) -> set[str]:
        """Every page id the spaces' id listings showed."""
        return {page_id for listing in self.listings.values() for page_id in listing.refs}


class SyncJob:
    """Job handler for ``kind="sync"``. Shares the crawl's preparer (conversion rules)."""

    def __init__(
        self,
        store: Store,
        sources: SourceService,
        embedder: Callable[[], Embedder],
        settings: Settings,
        crawl: CrawlJob,
        *,
        converter_workers: int = 1,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._sources = sources
        self._embedder = embedder
        self._settings = settings
        self._crawl = crawl
        self._converter_workers = converter_workers
        self._clock = clock or (lambda: datetime.now(UTC))

    async def __call__(self, context: JobContext) -> None:
        source = await self._store.get_source(context.job.source_id)
        previous = source.sync_status if source.sync_status != "syncing" else "active"
        await self._store.update_source(source.id, sync_status="syncing")
        try:
            await self._sync(context, source)
        except (asyncio.CancelledError, JobCancelled):
            # Cancelled or interrupted by shutdown: the runner records neither a success nor
            # an error on the source, so put back what it said before. (A failure is recorded
            # by the runner as sync_status "error" with the message.)
            with contextlib.suppress(ConfluenceRagError, asyncio.CancelledError):
                await asyncio.shield(self._store.update_source(source.id, sync_status=previous))
            raise

    async def _sync(self, context: JobContext, source: SourceRecord) -> None:
        progress = context.progress
        credentials = await self._sources.credentials(source.id)
        context.secrets.extend(credentials.auth().secrets())
        progress.set_stage("checking")
        progress.declare_spaces(source.space_keys)
        embedder = self._embedder()
        stored = await self._store.page_versions(source.id)
        since = _aware(source.last_sync_at) if source.last_sync_at is not None else None
        async with self._sources.open_client(source) as client:
            spaces = []
            for key in source.space_keys:
                space = await client.check_access(key)
                spaces.append(SpaceTarget(key=key, name=space.name))
            context.raise_if_cancelled()
            await self._check_model(embedder)
            plan = await self._crawl.plan(source, spaces, stored)
            live = sum(1 for _, deleted in stored.values() if not deleted)
            sync = SyncPlan(
                since=since,
                space_keys=frozenset(source.space_keys),
                new_page_budget=None if source.max_pages is None else source.max_pages - live,
            )
            if since is None:
                progress.log(
                    f"no completed crawl yet: listing all of {', '.join(source.space_keys)} "
                    f"({len(stored)} pages already stored)"
                )
            else:
                progress.log(
                    f"changes since {since.isoformat(timespec='seconds')} "
                    f"(minus {self._settings.sync_overlap_hours:g} h overlap, site time zone "
                    f"{self._settings.site_timezone}); {live} live pages stored"
                )
            pipeline = PagePipeline(
                plan,
                client=client,
                store=self._store,
                embedder=embedder,
                prepare=self._crawl.preparer(
                    source, embedder, client.api_base, UserDirectory(client, note=progress.log)
                ),
                progress=progress,
                batch_size=embedder.batch_size,
                converter_workers=self._converter_workers,
                lister=lambda run: list_changes(run, sync),
            )
            await pipeline.run()
        if sync.budget_refused:
            progress.log(
                f"max_pages={source.max_pages}: {sync.budget_refused} new page(s) not added"
            )
        progress.set_stage("finalizing")
        context.raise_if_cancelled()
        await self._delete_missing(source.id, stored, sync, progress)
        await self._forget_gone_skips(source.id, plan.skipped_versions.keys(), sync)
        await self._purge(progress)
        counters = progress.counters()
        if counters["pages_failed"]:
            progress.log(f"{counters['pages_failed']} page(s) failed; see the lines above")

    async def _check_model(self, embedder: Embedder) -> None:
        """The index's model must be this embedder's, checked without embedding anything (a sync
        with no changes makes no embedding call). A brand-new index learns the model from one
        probe, as a crawl does."""
        recorded = await self._store.get_index_model()
        if recorded is None:
            probe = await embedder.embed_documents(["confluence-rag model check"])
            await self._store.ensure_index_model(embedder.model_id, int(probe.shape[1]))
        else:
            # Same dimension as recorded: this only checks the model id (IndexModelMismatch).
            await self._store.ensure_index_model(embedder.model_id, recorded.dimension)

    async def _delete_missing(
        self,
        source_id: str,
        stored: dict[str, tuple[int, bool]],
        sync: SyncPlan,
        progress: JobProgress,
    ) -> None:
        live = {page_id for page_id, (_, deleted) in stored.items() if not deleted}
        missing: set[str] = set()
        if sync.listings_complete:
            missing = live - sync.listed_ids() - sync.delivered
        # Fetched by id and not returned: deleted or restricted since it was listed. The server
        # answered for exactly these ids, so this holds even when a listing was incomplete.
        gone = (sync.gone & live) - sync.delivered
        doomed = sorted(missing | gone)
        if not doomed:
            return
        changed = await self._store.soft_delete_pages(source_id, doomed, self._clock())
        progress.count(SOURCE_WIDE, "pages_deleted", changed)
        progress.log(f"{changed} page(s) deleted from the index: {_ids(doomed)}")

    async def _forget_gone_skips(
        self, source_id: str, skipped: Iterable[str], sync: SyncPlan
    ) -> None:
        """Skip records of pages no complete listing shows any more (or that fetching by id no
        longer returns) are dropped: their pages are gone, like a stored page that is deleted."""
        listed = sync.listed_ids() if sync.listings_complete else set()
        gone = {
            page_id
            for page_id in skipped
            if page_id not in sync.delivered
            and (page_id in sync.gone or (sync.listings_complete and page_id not in listed))
        }
        if gone:
            await self._store.forget_skipped(source_id, sorted(gone))

    async def _purge(self, progress: JobProgress) -> None:
        days = self._settings.deleted_retention_days
        purged = await self._store.purge_deleted(self._clock() - timedelta(days=days))
        if purged:
            progress.log(f"{purged} page(s) deleted more than {days:g} day(s) ago purged for good")


async def list_changes(pipeline: PagePipeline, sync: SyncPlan) -> None:
    """The sync's lister, space by space: the change window first, so its pages are converted,
    embedded and written while the id listing runs; then what only the id listing shows as new
    or changed, fetched by id. A resumed sync skips the spaces it finished but still lists
    their ids: deletions are decided over every space of the source.

    The id listings are most of a sync's time: pages of ids, one request after another. Every
    space's listing starts at once (the site's request limit still bounds them), while the
    spaces are processed in order, so what a sync admits and logs does not depend on timing."""
    progress = pipeline.progress
    progress.set_stage("processing")
    types = pipeline.plan.page_types
    listings = {
        space.key: asyncio.create_task(
            pipeline.client.iter_page_ids(space.key, types=types), name=f"id-listing-{space.key}"
        )
        for space in pipeline.plan.spaces
    }
    try:
        for space in pipeline.plan.spaces:
            if progress.is_finished(space.key):
                await _list_ids(sync, space.key, listings[space.key], progress)
            else:
                await _sync_space(pipeline, sync, space.key, listings[space.key])
    finally:
        for task in listings.values():
            task.cancel()
        await asyncio.gather(*listings.values(), return_exceptions=True)


async def _list_ids(
    sync: SyncPlan, key: str, pending: asyncio.Task[IdListing], progress: JobProgress
) -> IdListing:
    listing = await pending
    sync.listings[key] = listing
    if not listing.complete:
        message = (
            f"listing space {key} stopped after {len(listing.refs)} pages: "
            f"{listing.error or 'incomplete listing'}"
        )
        if sync.since is None:
            # A full listing is the only change feed here: going on would silently miss pages.
            raise ConfluenceError(message, details={"space_key": key})
        progress.log(f"warning: {message}; no page is deleted by this sync")
    return listing


async def _sync_space(
    pipeline: PagePipeline, sync: SyncPlan, key: str, listing: asyncio.Task[IdListing]
) -> None:
    """One space: the change window (pages with bodies), the id listing, then what only the id
    listing shows as new or changed, fetched by id.

    Counted as a crawl counts: ``pages_listed`` is every page the id listing saw (plus window
    pages it did not see), and each ends as unchanged, processed, skipped or failed.
    """
    plan, progress, client = pipeline.plan, pipeline.progress, pipeline.client
    seen: set[str] = set()
    fetch: list[str] = []
    windowed = unchanged = skipped = refused = 0
    if sync.since is not None:
        async for page in client.iter_pages(
            key, types=plan.page_types, modified_since=sync.since, include_body=True
        ):
            if page.id in seen:
                continue
            seen.add(page.id)
            windowed += 1
            if pipeline.is_current(page.id, page.version):
                unchanged += 1
            elif pipeline.skipped_before(page.id, page.version):
                skipped += 1
            elif not _admit(sync, plan.stored_versions, page.id):
                refused += 1
            elif page.body_storage is None:
                fetch.append(page.id)
            else:
                sync.delivered.add(page.id)
                await pipeline.put(key, page)
    refs = (await _list_ids(sync, key, listing, progress)).refs
    listed = len(refs) + len(seen - refs.keys())
    progress.size_hint(key, listed)
    progress.count(key, "pages_listed", listed)
    extra = 0
    for ref in refs.values():
        if ref.id in seen:
            continue
        if pipeline.is_current(ref.id, ref.version):
            unchanged += 1
        elif pipeline.skipped_before(ref.id, ref.version):
            skipped += 1
        elif _admit(sync, plan.stored_versions, ref.id):
            fetch.append(ref.id)
            extra += 1
        else:
            refused += 1
    progress.count(key, "pages_unchanged", unchanged)
    progress.count(key, "pages_skipped", skipped + refused)
    progress.log(
        f"space {key}: {len(refs)} pages listed, {windowed} in the change window, "
        f"{unchanged} already current, {skipped} skipped at that version before, {extra} new "
        f"or changed found by the id listing only; {len(fetch)} to fetch by id"
    )
    delivered: set[str] = set()
    if fetch:
        async for page in client.fetch_pages(fetch, include_body=True):
            if page.id in delivered:
                continue
            if page.space_key and page.space_key not in sync.space_keys:
                continue  # moved out of the source's spaces since it was listed: gone here
            delivered.add(page.id)
            sync.delivered.add(page.id)
            await pipeline.put(key, page)
    missing = [page_id for page_id in fetch if page_id not in delivered]
    sync.gone.update(missing)
    pipeline.dispose_missing(key, len(missing), "gone, moved out or no longer readable")
    pipeline.space_listed(key)


def _admit(sync: SyncPlan, stored: Any, page_id: str) -> bool:
    """Whether a page may go down the pipeline: stored pages always, new ones within
    ``max_pages``."""
    if page_id in stored or sync.new_page_budget is None:
        return True
    if sync.new_page_budget <= 0:
        sync.budget_refused += 1
        return False
    sync.new_page_budget -= 1
    return True


def _ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:LOG_IDS])
    return shown + (f" and {len(ids) - LOG_IDS} more" if len(ids) > LOG_IDS else "")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
