"""The job runner: persisted jobs with progress, cancel, leases, heartbeat and resume.

Every crawl or sync is a row in the store (its id is the ``progress_id`` clients poll), so
progress survives a restart and another process (the API server, a CLI, a worker) can watch or
cancel it. Any number of runners may share one queue: the ``serve`` process, ``confluence-rag
worker`` processes (PostgreSQL), a foreground CLI crawl. Each runs at most
``settings.max_concurrent_jobs`` jobs at once.

Life of a job: ``queued`` -> ``running`` -> ``completed`` | ``failed`` | ``cancelled``.

- A runner takes a job only through the store's atomic claim (``claim_next_job`` /
  ``claim_job``: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the single write lock on SQLite),
  which sets ``lease_owner`` and ``lease_expires_at``. So two runners never run one job.
- While it runs, the owner renews the lease every ``settings.job_heartbeat_seconds``. A renewal
  that fails means the job is no longer this runner's (taken over after this process stalled
  past its lease, or cancelled by a source deletion): the runner stops that work at once and
  writes nothing more to the job.
- A job whose lease ran out (its worker died, or hung) is claimable again: the next scan of any
  runner takes it over and resumes it from its checkpoint. Resuming is safe because the work is
  idempotent (pages already stored at the listed version are skipped).
- Progress is kept in memory (``JobProgress``) and written at most every ``FLUSH_SECONDS``, so
  bookkeeping never slows the crawl.
- Cancel sets a persisted flag; the owner sees it at its next flush (in-process: at once) and
  stops its work. Whatever was stored stays stored.
- A graceful ``stop()`` puts interrupted jobs back to ``queued`` so a runner resumes them.
- A crawl of several spaces may be split into one child job per space (``space_split.py``), so
  several workers crawl one source's spaces in parallel; the parent job follows its children.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Mapping
from datetime import datetime
from typing import Any

from confluence_rag.errors import (
    ConfluenceRagError,
    InvalidInput,
    JobAlreadyRunning,
    JobCancelled,
    JobNotFound,
    SourceNotFound,
    StoreError,
)
from confluence_rag.ingest.job_context import JobContext, JobHandler
from confluence_rag.ingest.job_records import (
    TERMINAL,
    JobSlot,
    new_job_record,
    scrub,
    worker_identity,
)
from confluence_rag.ingest.job_records import aware as _aware
from confluence_rag.ingest.job_records import log_line as _line
from confluence_rag.ingest.job_records import now as _now
from confluence_rag.ingest.job_records import summary as _summary
from confluence_rag.ingest.progress import JobProgress
from confluence_rag.records import JobRecord
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
# What ``_execute`` ends with when the job turned out not to be ours any more.
LOST = "lost"


class JobRunner:
    """Submits, runs, watches and cancels jobs. One per process (built by ``build_services``)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        handlers: Mapping[str, JobHandler] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._handlers: dict[str, JobHandler] = dict(handlers or {})
        self._slots: asyncio.Semaphore | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Jobs whose task here died unable to record its end (e.g. the disk is full): waiting
        # for the store to say "finished" would never end, so watchers get the error instead.
        self._unrecorded: dict[str, ConfluenceRagError] = {}
        self._work: dict[str, asyncio.Task[None]] = {}
        self._contexts: dict[str, JobContext] = {}
        self._submit_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self.worker_id = worker_identity()

    def register(self, kind: str, handler: JobHandler) -> None:
        """Add or replace the handler for a job kind (e.g. ``sync`` by ``ingest/sync.py``)."""
        self._handlers[kind] = handler

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    @property
    def lease_seconds(self) -> float:
        return self._settings.job_lease_seconds

    # --- public API ---------------------------------------------------------------------------
    async def submit(self, source_id: str, kind: str = "crawl") -> JobRecord:
        """Queue a job for ``source_id``; it runs here at once if the runner is started (or
        on whichever runner claims it first).

        Raises ``SourceNotFound``, ``InvalidInput`` (unknown kind) or ``JobAlreadyRunning``
        (one queued or running job per source) carrying the active job's id.
        """
        if kind not in self._handlers:
            known = ", ".join(sorted(self._handlers))
            raise InvalidInput(f"unknown job kind {kind!r}: use one of {known}")
        async with self._submit_lock:
            await self._store.get_source(source_id)
            active = await self._store.running_job_for_source(source_id)
            if active is not None:
                active = await self._top_job(active)
                raise JobAlreadyRunning(
                    f"a {active.kind} job ({active.id}) is already {active.status} for "
                    f"source {source_id}; wait for it or cancel it",
                    job_id=active.id,
                )
            job = new_job_record(source_id, kind)
            await self._store.create_job(job)
        logger.info("job %s queued: %s of %s", job.id, kind, source_id)
        self._notify()
        if self._started and not self._stopping:
            self._launch(job.id)
        return job

    async def get(self, job_id: str) -> JobRecord:
        return await self._store.get_job(job_id)

    async def list(
        self, active_only: bool = True, source_id: str | None = None, *, parts: bool = False
    ) -> list[JobRecord]:
        """Jobs, newest first. The per-space jobs of a split crawl are left out unless
        ``parts``: surfaces show the job a person started (its progress sums its parts)."""
        jobs = await self._store.list_jobs(active_only=active_only, source_id=source_id)
        return [job for job in jobs if parts or not job.checkpoint.get("parent")]

    async def cancel(self, job_id: str) -> JobRecord:
        """Ask a job to stop (and, for a split crawl, its per-space jobs). Idempotent; a
        finished job is returned as it is."""
        job = await self._store.get_job(job_id)
        if job.status in TERMINAL:
            return job
        await self._store.update_job(job_id, cancel_requested=True)
        for child_id in dict(job.checkpoint.get("children") or {}).values():
            try:
                await self.cancel(str(child_id))
            except JobNotFound:
                pass  # planned but never created: nothing to stop
        context = self._contexts.get(job_id)
        if context is not None:
            context.cancel_event.set()
            work = self._work.get(job_id)
            if work is not None:
                work.cancel()
        elif job.status == "queued":
            # Nobody is running it: it ends here. (A runner claiming it at this moment loses
            # its lease at its first heartbeat and stops.)
            await self._store.update_job(
                job_id,
                status="cancelled",
                stage="cancelled",
                finished_at=_now(),
                lease_owner=None,
                lease_expires_at=None,
                log=[*job.log, _line("cancelled before it started")][-50:],
            )
        self._notify()
        return await self._store.get_job(job_id)

    async def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        """The job once it is finished, or its latest state when ``timeout`` runs out."""
        latest = await self._store.get_job(job_id)
        try:
            async with asyncio.timeout(timeout):
                async for job in self.watch(job_id):
                    latest = job
        except TimeoutError:
            pass
        return latest

    async def watch(
        self, job_id: str, poll_seconds: float = FLUSH_SECONDS
    ) -> AsyncIterator[JobRecord]:
        """Yield the job each time it changes, ending with its finished state.

        Changes made in this process wake watchers at once; changes made by another process
        are seen by polling the store.
        """
        last: JobRecord | None = None
        while True:
            changed = self._changed
            job = await self._store.get_job(job_id)
            if job != last:
                last = job
                yield job
            if job.status in TERMINAL:
                return
            if job_id in self._unrecorded:
                raise self._unrecorded[job_id]
            try:
                async with asyncio.timeout(poll_seconds):
                    await changed.wait()
            except TimeoutError:
                pass

    def start(self) -> None:
        """Run jobs in this process: queued ones, orphaned ones (lapsed lease), new ones."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._slots = asyncio.Semaphore(self._settings.max_concurrent_jobs)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="job-dispatcher")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop running jobs; interrupted ones go back to ``queued`` for a runner to resume."""
        if not self._started:
            return
        self._stopping = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        for work in list(self._work.values()):
            work.cancel()
        tasks = list(self._tasks.values())
        if tasks:
            done, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._started = False

    @property
    def running_here(self) -> tuple[str, ...]:
        """Ids of the jobs this process is executing now."""
        return tuple(self._work)

    # --- scheduling ---------------------------------------------------------------------------
    async def _dispatch_loop(self) -> None:
        """Claim what there is to run, then wait for news (a submit here, or the next scan:
        another process may have queued a job, or a lease may have lapsed)."""
        # Idle runners look often (a claim is one cheap query) so queued work starts soon.
        interval = max(0.2, min(2.0, self.lease_seconds / 4))
        while True:
            try:
                await self._sweep_cancelled()
                await self._claim_available()
            except ConfluenceRagError as exc:
                logger.warning("job scan failed, retrying in %.0f s: %s", interval, exc.message)
            try:
                async with asyncio.timeout(interval):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    async def _claim_available(self) -> None:
        """Take queued and orphaned jobs, oldest first, while this runner has room."""
        assert self._slots is not None
        while not self._stopping:
            slot = JobSlot(self._slots)
            await slot.acquire()
            claim = asyncio.ensure_future(
                self._store.claim_next_job(self.worker_id, self.kinds, self.lease_seconds)
            )
            try:
                job = await asyncio.shield(claim)
            except asyncio.CancelledError:
                # stop() arrived mid-claim: a job the database already handed us would sit
                # leased to a runner that never runs it until the lease lapsed. Give it back.
                slot.release()
                claimed = await asyncio.gather(claim, return_exceptions=True)
                if isinstance(claimed[0], JobRecord):
                    await self._requeue(claimed[0])
                raise
            except BaseException:
                slot.release()
                raise
            if job is None:
                slot.release()
                return
            self._start_task(job.id, self._run_claimed(job, slot))

    async def _requeue(self, job: JobRecord) -> None:
        """Hand back a job claimed but not started (its checkpoint is untouched)."""
        await self._store.update_job(
            job.id, status="queued", lease_owner=None, lease_expires_at=None
        )
        logger.info("job %s handed back to the queue unstarted", job.id)

    async def _sweep_cancelled(self) -> None:
        """End jobs whose cancel was asked while nobody ran them (their runner died): the
        claim never hands those out, so without this they would stay active forever."""
        for job in await self._store.list_jobs(active_only=True):
            if not job.cancel_requested or job.id in self._tasks:
                continue
            lapsed = job.lease_expires_at is None or _aware(job.lease_expires_at) < _now()
            if job.status == "queued" or lapsed:
                await self._store.update_job(
                    job.id,
                    status="cancelled",
                    stage="cancelled",
                    finished_at=_now(),
                    lease_owner=None,
                    lease_expires_at=None,
                    log=[*job.log, _line("cancelled")][-50:],
                )
                self._notify()

    def _launch(self, job_id: str) -> None:
        """Run this job here as soon as a slot is free, unless another runner claims it first."""
        if job_id not in self._tasks:
            self._start_task(job_id, self._claim_and_run(job_id))

    def _start_task(self, job_id: str, work: Coroutine[Any, Any, None]) -> None:
        self._unrecorded.pop(job_id, None)
        task = asyncio.create_task(work, name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        job_ids = [job_id for job_id, known in self._tasks.items() if known is task]
        for job_id in job_ids:
            del self._tasks[job_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Only bookkeeping can fail here (the store went away while finishing a job): the
            # job keeps its lease until it lapses, then a runner takes it over.
            logger.error("job task %s failed: %s", task.get_name(), exc)
            error = (
                exc
                if isinstance(exc, ConfluenceRagError)
                else StoreError(f"the job's end could not be recorded: {exc}")
            )
            for job_id in job_ids:
                self._unrecorded[job_id] = error
            self._notify()

    async def _top_job(self, job: JobRecord) -> JobRecord:
        """The job a person asked for: a split crawl's parent rather than one of its spaces."""
        parent = job.checkpoint.get("parent")
        if not parent:
            return job
        try:
            return await self._store.get_job(str(parent))
        except JobNotFound:
            return job

    # --- running one job ----------------------------------------------------------------------
    async def _claim_and_run(self, job_id: str) -> None:
        assert self._slots is not None
        slot = JobSlot(self._slots)
        await slot.acquire()
        job = None
        try:
            if not self._stopping:
                job = await self._store.claim_job(job_id, self.worker_id, self.lease_seconds)
        finally:
            if job is None:  # finished, cancelled, another runner has it, or stopping
                slot.release()
        if job is not None:
            await self._run_claimed(job, slot)

    async def _run_claimed(self, job: JobRecord, slot: JobSlot) -> None:
        """Run a job this runner holds the lease of; ``slot`` is released when it ends."""
        handler = self._handlers[job.kind]

        async def run(context: JobContext) -> None:
            from confluence_rag.ingest import space_split  # here: it imports this module

            if await space_split.should_split(self._store, self._settings, context):
                # Following per-space jobs is waiting, not work: give the place back to them.
                slot.release()
                await space_split.SplitFollower(self._store, self).run(context)
            else:
                await handler(context)

        try:
            context = await self._begin(job)
            await self._execute(context, run)
        finally:
            slot.release()
            self._contexts.pop(job.id, None)
            self._work.pop(job.id, None)
            self._notify()
            self.poke()

    async def _begin(self, job: JobRecord) -> JobContext:
        """Set up the attempt of a freshly claimed job: checkpoint, progress, first log line."""
        checkpoint = dict(job.checkpoint or {})
        attempt = int(checkpoint.get("attempt", 0)) + 1
        interrupted = bool(checkpoint.pop("interrupted", False))
        checkpoint["attempt"] = attempt
        checkpoint["worker"] = self.worker_id
        progress = JobProgress(
            stage="checking",
            percent=job.percent or 0.0,
            log=job.log or (),
            finished_spaces=checkpoint.get("finished_spaces"),
        )
        if attempt > 1:
            was = "interrupted" if interrupted else "orphaned by a crash"
            progress.log(f"resuming (attempt {attempt}): the previous run was {was}")
        else:
            progress.log(f"{job.kind} started")
        await self._store.update_job(
            job.id, checkpoint=checkpoint, error=None, **progress.snapshot()
        )
        job = await self._store.get_job(job.id)
        spaces = checkpoint.get("spaces")
        context = JobContext(
            job=job,
            attempt=attempt,
            progress=progress,
            checkpoint=checkpoint,
            spaces=tuple(spaces) if spaces else None,
        )
        self._contexts[job.id] = context
        logger.info("job %s claimed by %s (attempt %d)", job.id, self.worker_id, attempt)
        self._notify()
        return context

    async def _execute(self, context: JobContext, handler: JobHandler) -> None:
        job = context.job
        attempt_started = _now()
        work = asyncio.create_task(handler(context), name=f"job-work-{job.id}")
        self._work[job.id] = work
        monitor = asyncio.create_task(self._monitor(context, work), name=f"job-monitor-{job.id}")
        status, error = "completed", None
        try:
            await asyncio.wait({work, monitor}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                # The monitor died (the store failed): the job cannot report, so it stops.
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)
                exc = monitor.exception() if not monitor.cancelled() else None
                raise exc if exc is not None else JobCancelled("job monitor stopped")
            work.result()
        except (asyncio.CancelledError, JobCancelled):
            if context.lost:
                status = LOST
            elif context.cancel_event.is_set():
                status = "cancelled"
            elif self._stopping:
                status = "queued"
            else:
                raise
        except ConfluenceRagError as exc:
            status, error = "failed", scrub(exc.message, context.secrets)
        except Exception as exc:  # a bug must still end the job visibly, not leave it running
            logger.exception("job %s crashed", job.id)
            status = "failed"
            error = scrub(f"unexpected {type(exc).__name__}: {exc}", context.secrets)
        finally:
            monitor.cancel()
            await asyncio.gather(monitor, return_exceptions=True)
        if status != LOST and not await self._still_ours(context):
            status = LOST
        if status == LOST:
            logger.warning(
                "job %s is no longer %s's (taken over or cancelled elsewhere); stopped it",
                job.id,
                self.worker_id,
            )
            self._notify()
            return
        await self._finish(context, status, error, attempt_started)

    async def _still_ours(self, context: JobContext) -> bool:
        """Renew the lease once more before writing the end state: a runner that lost the job
        must not overwrite what the new owner (or a source deletion) wrote."""
        if await self._store.renew_lease(context.job.id, self.worker_id, self.lease_seconds):
            return True
        context.lost = True
        return False

    async def _finish(
        self, context: JobContext, status: str, error: str | None, attempt_started: datetime
    ) -> None:
        job, progress = context.job, context.progress
        if status == "completed":
            progress.log("completed: " + _summary(progress.counters()))
            progress.complete()
        elif status == "cancelled":
            progress.set_stage("cancelled")
            progress.log("cancelled: " + _summary(progress.counters()))
        elif status == "queued":
            progress.log("interrupted by shutdown; will resume on next start")
            context.checkpoint["interrupted"] = True
        else:
            progress.set_stage("failed")
            progress.log(f"failed: {error}")
        context.checkpoint["finished_spaces"] = progress.finished_spaces
        fields: dict[str, Any] = {
            "status": status,
            "checkpoint": context.checkpoint,
            "error": error,
            "heartbeat_at": _now(),
            "lease_owner": None,
            "lease_expires_at": None,
            **progress.snapshot(),
        }
        if status in TERMINAL:
            fields["finished_at"] = _now()
            fields["result"] = {
                **progress.counters(),
                "duration_seconds": round((_now() - attempt_started).total_seconds(), 3),
                "attempts": context.attempt,
            }
        # The source first, then the job: whoever sees the job ended (a watcher polls the job
        # alone) must find the source already marked, never "syncing" with its job completed.
        # (Seen: tests/sync/test_sync_safety.py read the source between the two writes.)
        # A space of a split crawl is not the source's sync: its parent reports that.
        if not context.checkpoint.get("parent"):
            await self._mark_source(job, status, error, attempt_started)
        await self._store.update_job(job.id, **fields)
        logger.info("job %s %s", job.id, status)
        self._notify()

    async def _mark_source(
        self, job: JobRecord, status: str, error: str | None, attempt_started: datetime
    ) -> None:
        try:
            if status == "completed":
                source = await self._store.get_source(job.source_id)
                await self._store.update_source(
                    job.source_id,
                    last_sync_at=attempt_started,
                    sync_status="paused" if source.paused else "active",
                    sync_error=None,
                )
            elif status == "failed":
                await self._store.update_source(
                    job.source_id, sync_status="error", sync_error=error
                )
        except SourceNotFound:
            pass  # the source was deleted while its job ran: nothing left to mark

    async def _monitor(self, context: JobContext, work: asyncio.Task[None]) -> None:
        """Renew the lease (heartbeat), persist progress (throttled), pick up cancels.

        Progress is written only within a heartbeat of a successful renewal, so a runner that
        stalled past its lease finds out (the renewal fails) before it writes anything."""
        job_id = context.job.id
        heartbeat = self._settings.job_heartbeat_seconds
        interval = min(FLUSH_SECONDS, heartbeat)
        written_version = -1
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            if time.monotonic() - last_beat >= heartbeat:
                if not await self._store.renew_lease(job_id, self.worker_id, self.lease_seconds):
                    context.lost = True
                    work.cancel()
                    return
                last_beat = time.monotonic()
                self._notify()
            progress = context.progress
            progress.recompute_percent()
            if progress.version != written_version:
                context.checkpoint["finished_spaces"] = progress.finished_spaces
                await self._store.update_job(
                    job_id, **progress.snapshot(), checkpoint=context.checkpoint
                )
                written_version = progress.version
                self._notify()
            current = await self._store.get_job(job_id)
            if current.cancel_requested and not context.cancel_event.is_set():
                context.cancel_event.set()
                work.cancel()

    def _notify(self) -> None:
        """Wake every watcher: they re-read the store and yield what changed."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def poke(self) -> None:
        """Make the dispatcher look for work now (a slot came free, or jobs were queued by
        this process) instead of at its next scan."""
        self._wake.set()
