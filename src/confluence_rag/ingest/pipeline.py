"""The streaming crawl pipeline: list -> convert + chunk -> embed -> store.

Four stages joined by bounded asyncio queues, so memory holds a few dozen pages however large the
space is, and a slow stage makes the faster ones wait instead of piling up work:

    lister ──pages──> converter ──prepared pages──> embedder ──pages + vectors──> writer

- The lister lists ids and versions, drops pages already stored at the listed version, and
  fetches the rest with bodies: that is what makes a resumed or repeated crawl cheap and
  idempotent (Confluence cursors are not durable, so resuming means listing again). A lister is
  pluggable (``Lister``): the crawl's is ``list_all_pages``; an incremental sync brings its own.
- Conversion and chunking are CPU work: they run in a dedicated thread, so the event loop
  keeps fetching while a page is converted. The converter also looks up vectors it can reuse
  by content hash (``store.embeddings_for_hashes``), off the model's critical path.
- The embedder is two tasks: a collector cuts full batches of new chunk texts from as many
  pages as it takes, and a model runner embeds them in the embedder's own executor, with the
  next batch always ready. Embedding is the bottleneck on a laptop; everything else overlaps
  with it.
- The writer stores each page with its chunks in one transaction (``store.write_page``).

One bad page (conversion or chunking fails) is counted and logged with its id and reason, and
the crawl goes on. Anything systemic (Confluence unreachable, the model or the database failing)
ends the run with that error; what was written stays written.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from confluence_rag.confluence.models import IdListing, Page
from confluence_rag.content.models import Document
from confluence_rag.errors import ConfluenceError
from confluence_rag.index.models import Chunk
from confluence_rag.ingest.memory import release_free_heap
from confluence_rag.ingest.progress import JobProgress

if TYPE_CHECKING:
    from confluence_rag.index.embedders import Embedder

logger = logging.getLogger(__name__)

# Queue sizes: enough to keep the next stage busy, small enough to keep memory flat.
PAGE_QUEUE = 32
PREPARED_QUEUE = 32
WRITE_QUEUE = 16
# Recently embedded vectors kept by hash, so a chunk repeated across pages in flight (not yet
# written, so not yet findable in the store) is not embedded twice.
RECENT_VECTORS = 4096
REASON_CHARS = 300
# How often freed heap memory is handed back to the OS (see memory.py).
TRIM_SECONDS = 2.0


class PageStore(Protocol):
    """What the pipeline needs from the store."""

    async def embeddings_for_hashes(
        self, source_id: str | None, hashes: Sequence[str]
    ) -> Mapping[str, np.ndarray]: ...

    async def write_page(
        self,
        source_id: str,
        document: Document,
        chunks: Sequence[Chunk],
        embeddings: np.ndarray,
    ) -> Any: ...

    async def soft_delete_pages(
        self, source_id: str, confluence_page_ids: Sequence[str], when: datetime
    ) -> int: ...

    async def record_skipped(
        self, source_id: str, confluence_page_id: str, version: int, rules: str, reason: str
    ) -> None: ...

    async def forget_skipped(self, source_id: str, confluence_page_ids: Sequence[str]) -> int: ...


# Converts one page off the event loop: returns (document, chunks) or a skip reason.
Preparer = Callable[[Page, str], "tuple[Document, list[Chunk]] | str"]


# Feeds the pipeline: calls ``put`` for each page to process and ``space_listed`` per space.
Lister = Callable[["PagePipeline"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class SpaceTarget:
    key: str
    name: str


@dataclass(slots=True)
class CrawlPlan:
    source_id: str
    spaces: tuple[SpaceTarget, ...]
    page_types: tuple[str, ...]
    max_pages: int | None = None
    # confluence_page_id -> (version, is_deleted) as stored when the run started
    stored_versions: Mapping[str, tuple[int, bool]] = field(default_factory=dict)
    # The skip rules' key (content/metadata.skip_rules_key), and each page skipped before as
    # (version, rules): skipped at the listed version under these rules, it is not fetched.
    skip_rules: str = ""
    skipped_versions: Mapping[str, tuple[int, str]] = field(default_factory=dict)


@dataclass(slots=True, eq=False)  # identity: a page is waited for by object
class _Prepared:
    space: str
    page: Page
    document: Document
    chunks: list[Chunk]
    vectors: dict[str, np.ndarray] = field(default_factory=dict)
    missing: int = 0  # distinct chunk hashes still waiting for the model


class _End:
    """Marks the end of a queue's stream."""


_END = _End()


class PagePipeline:
    """One run of the four stages over a plan. ``run()`` returns when every listed page has been
    stored, skipped or recorded as failed; it raises the first systemic error."""

    def __init__(
        self,
        plan: CrawlPlan,
        *,
        client: Any,
        store: PageStore,
        embedder: Embedder,
        prepare: Preparer,
        progress: JobProgress,
        batch_size: int = 32,
        converter_workers: int = 1,
        lister: Lister | None = None,
        on_space_finished: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.client = client
        self.progress = progress
        self._store = store
        self._embedder = embedder
        self._prepare = prepare
        self._progress = progress
        self._workers = max(1, converter_workers)
        self._batch_size = max(1, batch_size)
        self._on_space_finished = on_space_finished
        self._lister: Lister = lister or list_all_pages
        self._pages: asyncio.Queue[tuple[str, Page] | _End] = asyncio.Queue(PAGE_QUEUE)
        self._prepared: asyncio.Queue[_Prepared | _End] = asyncio.Queue(PREPARED_QUEUE)
        self._writes: asyncio.Queue[_Prepared | _End] = asyncio.Queue(WRITE_QUEUE)
        self._space_names = {space.key: space.name for space in plan.spaces}
        self._outstanding: dict[str, int] = {}
        self._listed_spaces: set[str] = set()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()
        self._executor: ThreadPoolExecutor | None = None
        # Embedding state shared by the collector and the model runner.
        self._batches: asyncio.Queue[list[tuple[str, str]] | _End] = asyncio.Queue(1)
        self._texts: dict[str, str] = {}  # hash -> text not yet sent to the model, in order
        self._running: set[str] = set()  # hashes cut into a batch, vectors not back yet
        self._waiting: dict[str, list[_Prepared]] = {}  # hash -> pages that need its vector
        self._model_idle = True
        self._trimmed = time.monotonic()

    async def run(self) -> None:
        # Conversion gets its own thread(s), not the loop's shared pool: a fixed, small set of
        # threads keeps glibc from spreading the heap over one malloc arena per pool thread,
        # which shows up as hundreds of MB of RSS next to the model.
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="crawl-convert")
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._list(), name="crawl-lister")
                converters = [
                    group.create_task(self._convert(), name=f"crawl-converter-{n}")
                    for n in range(self._workers)
                ]
                group.create_task(self._close_after(converters), name="crawl-converters-done")
                group.create_task(self._collect(), name="crawl-embed-collector")
                group.create_task(self._run_model(), name="crawl-embed-model")
                group.create_task(self._write(), name="crawl-writer")
        except BaseExceptionGroup as errors:
            # Callers want the error that stopped the crawl, not a group of one.
            raise _first_leaf(errors) from None
        finally:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # --- stage 1: list ----------------------------------------------------------------------
    async def _list(self) -> None:
        # No ``finally``: on an error or a cancel the task group stops every stage, and putting
        # an end marker into a full queue nobody reads any more would hang the shutdown.
        await self._lister(self)
        for _ in range(self._workers):
            await self._pages.put(_END)

    # The lister's side of the pipeline: what a lister (crawl here, sync in sync.py) calls.
    async def put(self, space: str, page: Page) -> None:
        """Send one page of ``space`` down the pipeline (waits while the queue is full)."""
        self._outstanding[space] = self._outstanding.get(space, 0) + 1
        await self._pages.put((space, page))

    def is_current(self, page_id: str, version: int) -> bool:
        """Whether the store already holds this page at this version (and not deleted)."""
        stored = self.plan.stored_versions.get(page_id)
        return stored is not None and stored[0] == version and not stored[1]

    def skipped_before(self, page_id: str, version: int) -> bool:
        """Whether this version of the page was skipped under the same rules by an earlier run."""
        return self.plan.skipped_versions.get(page_id) == (version, self.plan.skip_rules)

    def space_listed(self, space: str) -> None:
        """Every page of ``space`` has been put: the space finishes when they are all done."""
        self._listing_finished(space)

    def dispose_missing(self, space: str, count: int, reason: str) -> None:
        """Pages listed but not delivered (gone between listing and fetching): counted as
        skipped so the job's arithmetic adds up."""
        if count > 0:
            self._progress.count(space, "pages_skipped", count)
            self._progress.log(f"space {space}: {count} page(s) {reason}")

    def _listing_finished(self, space: str) -> None:
        self._listed_spaces.add(space)
        self._progress.listing_done(space)
        self._maybe_finish(space)

    def _dispose(self, space: str) -> None:
        """One page of ``space`` reached its end (stored, skipped or failed)."""
        self._outstanding[space] -= 1
        self._maybe_finish(space)

    def _maybe_finish(self, space: str) -> None:
        if space in self._listed_spaces and self._outstanding.get(space, 0) == 0:
            self._progress.finish_space(space)
            if self._on_space_finished is not None:
                self._on_space_finished(space)

    # --- stage 2: convert + chunk -------------------------------------------------------------
    async def _convert(self) -> None:
        progress = self._progress
        while not isinstance(entry := await self._pages.get(), _End):
            space, page = entry
            name = self._space_names.get(space, space)
            try:
                loop = asyncio.get_running_loop()
                result = await loop.run_in_executor(self._executor, self._prepare, page, name)
            except Exception as exc:  # one bad page must not stop the crawl
                reason = _reason(exc)
                progress.count(space, "pages_failed")
                progress.log(f"page {page.id} ({page.title!r}) failed: {reason}")
                logger.warning("page %s failed: %s", page.id, reason)
                self._dispose(space)
                continue
            if isinstance(result, str):
                progress.count(space, "pages_skipped")
                progress.log(f"page {page.id} ({page.title!r}) skipped: {result}")
                await self._unindex_if_stored(space, page.id)
                await self._store.record_skipped(
                    self.plan.source_id, page.id, page.version, self.plan.skip_rules, result
                )
                self._dispose(space)
                continue
            document, chunks = result
            prepared = _Prepared(space, page, document, chunks)
            # Reuse lookups happen here, off the model's critical path.
            await self._attach_known_vectors(prepared)
            await self._prepared.put(prepared)

    async def _unindex_if_stored(self, space: str, page_id: str) -> None:
        """A page the index holds but the rules now skip (emptied, archived, made a draft)
        leaves the index: its old text must not keep answering searches."""
        stored = self.plan.stored_versions.get(page_id)
        if stored is None or stored[1]:
            return
        removed = await self._store.soft_delete_pages(
            self.plan.source_id, [page_id], datetime.now(UTC)
        )
        self._progress.count(space, "pages_deleted", removed)
        self._progress.log(f"page {page_id} deleted from the index: it is skipped now")

    async def _close_after(self, converters: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*converters)
        await self._prepared.put(_END)

    # --- stage 3: embed ---------------------------------------------------------------------
    # Two tasks share the state below (one event loop, so no locks): the collector turns pages
    # into batches of new texts, the model runner embeds them. One batch waits ready while
    # another runs, so the model goes from batch to batch without waiting for the collector.

    async def _collect(self) -> None:
        """Cut full batches of new chunk texts, drawn from as many pages as it takes.

        Texts left over after the last full batch wait for more pages rather than going to the
        model as a runt batch, unless the model is idle and nothing else is queued.
        """
        batch_size = self._batch_size
        while not isinstance(item := await self._prepared.get(), _End):
            await self._register(item)
            while len(self._texts) >= batch_size:
                await self._batches.put(self._cut(batch_size))
            if self._texts and self._model_idle and self._batches.empty():
                if self._prepared.empty():
                    await self._batches.put(self._cut(batch_size))
        while self._texts:
            await self._batches.put(self._cut(batch_size))
        await self._batches.put(_END)

    async def _register(self, item: _Prepared) -> None:
        embedded = 0
        for chunk in item.chunks:
            digest = chunk.content_hash
            if digest in item.vectors or item in self._waiting.get(digest, ()):
                continue
            recent = self._recent.get(digest)
            if recent is not None:
                item.vectors[digest] = recent
                continue
            if digest not in self._texts and digest not in self._running:
                self._texts[digest] = chunk.embed_text
                embedded += 1
            self._waiting.setdefault(digest, []).append(item)
            item.missing += 1
        # Counted per space so a finished space's checkpoint carries its own numbers.
        self._progress.count(item.space, "chunks_embedded", embedded)
        self._progress.count(item.space, "chunks_reused", len(item.chunks) - embedded)
        if item.missing == 0:
            await self._writes.put(item)

    def _cut(self, size: int) -> list[tuple[str, str]]:
        """Take the oldest ``size`` waiting texts out as one batch for the model."""
        batch = [(digest, self._texts[digest]) for digest in list(self._texts)[:size]]
        for digest, _ in batch:
            del self._texts[digest]
            self._running.add(digest)
        return batch

    async def _run_model(self) -> None:
        while True:
            batch = await self._batches.get()
            if isinstance(batch, _End):
                break
            self._model_idle = False
            vectors = await self._embedder.embed_documents([text for _, text in batch])
            for (digest, _), vector in zip(batch, vectors, strict=True):
                self._running.discard(digest)
                self._remember(digest, vector)
                for item in self._waiting.pop(digest, ()):
                    item.vectors[digest] = vector
                    item.missing -= 1
                    if item.missing == 0:
                        await self._writes.put(item)
            self._model_idle = True
            if time.monotonic() - self._trimmed > TRIM_SECONDS and self._executor is not None:
                # On the conversion thread, not awaited: the model need not wait for it.
                self._trimmed = time.monotonic()
                self._executor.submit(release_free_heap)
            if self._batches.empty() and self._texts:
                # The collector is waiting for pages: give the model what there is.
                await self._batches.put(self._cut(self._batch_size))
        await self._writes.put(_END)

    async def _attach_known_vectors(self, item: _Prepared) -> None:
        """Fill ``item.vectors`` from recent work and from the store (content-hash reuse)."""
        wanted: list[str] = []
        for chunk in item.chunks:
            digest = chunk.content_hash
            if digest in item.vectors:
                continue
            recent = self._recent.get(digest)
            if recent is not None:
                item.vectors[digest] = recent
            else:
                wanted.append(digest)
        if wanted:
            # Any source's vector will do: the index holds one model, and a vector is a function
            # of the text it embeds. Unscoped, the lookup is one index probe per hash; scoped to
            # a source, SQLite walks every chunk of the source (~180 ms a page at 50k chunks).
            found = await self._store.embeddings_for_hashes(None, wanted)
            for digest, vector in found.items():
                item.vectors[digest] = np.asarray(vector, dtype=np.float32)

    def _remember(self, digest: str, vector: np.ndarray) -> None:
        self._recent[digest] = vector
        self._recent.move_to_end(digest)
        while len(self._recent) > RECENT_VECTORS:
            self._recent.popitem(last=False)

    # --- stage 4: write ---------------------------------------------------------------------
    async def _write(self) -> None:
        dimension = 0
        while not isinstance(item := await self._writes.get(), _End):
            if item.chunks:
                matrix = np.stack([item.vectors[chunk.content_hash] for chunk in item.chunks])
                dimension = matrix.shape[1]
            else:
                matrix = np.zeros((0, dimension or self._embedder.dimension), dtype=np.float32)
            await self._store.write_page(self.plan.source_id, item.document, item.chunks, matrix)
            if item.page.id in self.plan.skipped_versions:  # skipped before, stored now
                await self._store.forget_skipped(self.plan.source_id, [item.page.id])
            stored = self.plan.stored_versions.get(item.page.id)
            self._progress.count(item.space, "pages_processed")
            if stored is None:
                self._progress.count(item.space, "pages_added")
            elif stored[1]:  # stored as deleted: write_page brought it back
                self._progress.count(item.space, "pages_restored")
            else:
                self._progress.count(item.space, "pages_updated")
            self._dispose(item.space)
            item.vectors.clear()


def _first_leaf(group: BaseExceptionGroup[Any]) -> BaseException:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = f"{type(exc).__name__}: {text}"
    return text if len(text) <= REASON_CHARS else text[: REASON_CHARS - 1] + "…"


async def list_all_pages(pipeline: PagePipeline) -> None:
    """The crawl's lister: every page of every space, skipping what is already stored.

    Ids and versions are listed first for all spaces (cheap: no bodies, up to 1000 per request),
    which gives the exact total for the progress bar and lets a resumed crawl skip stored pages
    without downloading them. Then only new or changed pages are fetched with bodies, several
    batches in flight. A listing that fails part-way fails the crawl: pages it did not reach
    would otherwise be silently missing.
    """
    plan, progress, client = pipeline.plan, pipeline.progress, pipeline.client
    progress.set_stage("listing")
    remaining = plan.max_pages
    for space in plan.spaces:
        if progress.is_finished(space.key):
            remaining = None if remaining is None else remaining - _listed(progress, space.key)
    work: list[tuple[str, list[str]]] = []
    for space in plan.spaces:
        if progress.is_finished(space.key):
            continue
        if remaining is not None and remaining <= 0:
            progress.log(f"max_pages={plan.max_pages} reached: space {space.key} not crawled")
            break
        listing: IdListing = await client.iter_page_ids(space.key, types=plan.page_types)
        if not listing.complete:
            raise ConfluenceError(
                f"listing space {space.key} stopped after {len(listing.refs)} pages: "
                f"{listing.error or 'incomplete listing'}",
                details={"space_key": space.key, "listed": len(listing.refs)},
            )
        refs = list(listing.refs.values())
        if remaining is not None:
            if len(refs) > remaining:
                progress.log(f"max_pages={plan.max_pages}: {len(refs) - remaining} not crawled")
            refs = refs[:remaining]
            remaining -= len(refs)
        progress.size_hint(space.key, len(refs))
        progress.count(space.key, "pages_listed", len(refs))
        changed = [ref for ref in refs if not pipeline.is_current(ref.id, ref.version)]
        wanted = [ref.id for ref in changed if not pipeline.skipped_before(ref.id, ref.version)]
        progress.count(space.key, "pages_unchanged", len(refs) - len(changed))
        progress.count(space.key, "pages_skipped", len(changed) - len(wanted))
        progress.log(
            f"space {space.key}: {len(refs)} pages listed, {len(refs) - len(changed)} already "
            f"stored at that version, {len(changed) - len(wanted)} skipped at that version "
            f"before, {len(wanted)} to fetch"
        )
        work.append((space.key, wanted))
    progress.set_stage("processing")
    for key, wanted in work:
        delivered = 0
        if wanted:
            async for page in client.fetch_pages(wanted, include_body=True):
                delivered += 1
                await pipeline.put(key, page)
        pipeline.dispose_missing(key, len(wanted) - delivered, "gone since listing")
        pipeline.space_listed(key)


def _listed(progress: JobProgress, space: str) -> int:
    return progress.space_counters(space)["pages_listed"]
