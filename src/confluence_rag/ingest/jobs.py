"""The job runner: persisted jobs with progress, cancel, heartbeat and resume.

Every crawl or sync is a row in the store (its id is the ``progress_id`` clients poll), so
progress survives a restart and another process (the API server, a CLI) can watch or cancel it.
Jobs run as asyncio tasks of the process that called ``start()``, at most
``settings.max_concurrent_jobs`` at once.

Life of a job: ``queued`` -> ``running`` -> ``completed`` | ``failed`` | ``cancelled``.

- Progress is kept in memory (``JobProgress``) and written at most every ``FLUSH_SECONDS``, plus
  a heartbeat every ``settings.job_heartbeat_seconds``, so bookkeeping never slows the crawl.
- Cancel sets a persisted flag; the running process sees it at its next flush (in-process: at
  once) and stops its work. Whatever was stored stays stored.
- A job left ``running`` whose heartbeat is older than ``settings.job_lease_seconds`` was
  orphaned by a crash: ``start()`` (and a periodic scan after it) resumes it. Resuming is safe
  because the work is idempotent (pages already stored at the listed version are skipped).
- A graceful ``stop()`` puts interrupted jobs back to ``queued`` so the next start resumes them.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from confluence_rag.errors import (
    ConfluenceRagError,
    InvalidInput,
    JobAlreadyRunning,
    JobCancelled,
    SourceNotFound,
)
from confluence_rag.ingest.progress import JobProgress
from confluence_rag.settings import Settings
from confluence_rag.store.base import JobRecord, Store

logger = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
TERMINAL = ("completed", "failed", "cancelled")
FLUSH_SECONDS = 0.5
ERROR_CHARS = 2000


@dataclass(slots=True)
class JobContext:
    """What a job handler gets: its record, progress to fill, and a checkpoint to keep."""

    job: JobRecord
    attempt: int
    progress: JobProgress
    checkpoint: dict[str, Any]
    cancel_event: asyncio.Event = field(default_factory=asyncio.Event)
    # Secrets the handler knows (tokens): scrubbed from any error message persisted.
    secrets: list[str] = field(default_factory=list)

    def raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled("the job was cancelled")


JobHandler = Callable[[JobContext], Coroutine[Any, Any, None]]


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
        self._work: dict[str, asyncio.Task[None]] = {}
        self._contexts: dict[str, JobContext] = {}
        self._submit_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = False
        self.worker_id = f"{_hostname()}:{_pid()}:{uuid.uuid4().hex[:6]}"

    def register(self, kind: str, handler: JobHandler) -> None:
        """Add or replace the handler for a job kind (e.g. ``sync`` by ``ingest/sync.py``)."""
        self._handlers[kind] = handler

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(self._handlers)

    # --- public API ---------------------------------------------------------------------------
    async def submit(self, source_id: str, kind: str = "crawl") -> JobRecord:
        """Queue a job for ``source_id``; it runs here at once if the runner is started.

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

    async def list(self, active_only: bool = True, source_id: str | None = None) -> list[JobRecord]:
        return list(await self._store.list_jobs(active_only=active_only, source_id=source_id))

    async def cancel(self, job_id: str) -> JobRecord:
        """Ask a job to stop. Idempotent; a finished job is returned as it is."""
        job = await self._store.get_job(job_id)
        if job.status in TERMINAL:
            return job
        await self._store.update_job(job_id, cancel_requested=True)
        context = self._contexts.get(job_id)
        if context is not None:
            context.cancel_event.set()
            work = self._work.get(job_id)
            if work is not None:
                work.cancel()
        elif job.status == "queued":
            # Nobody is running it: it ends here. (A process about to claim it re-reads the
            # row first and sees the cancel.)
            await self._store.update_job(
                job_id,
                status="cancelled",
                stage="cancelled",
                finished_at=_now(),
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
            try:
                async with asyncio.timeout(poll_seconds):
                    await changed.wait()
            except TimeoutError:
                pass

    def start(self) -> None:
        """Run jobs in this process: queued ones, crashed ones (stale heartbeat), new ones."""
        if self._started:
            return
        self._started = True
        self._stopping = False
        self._slots = asyncio.Semaphore(self._settings.max_concurrent_jobs)
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="job-dispatcher")

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop running jobs; interrupted ones go back to ``queued`` to resume on next start."""
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
        interval = max(0.5, min(5.0, self._settings.job_lease_seconds / 2))
        while True:
            try:
                await self._adopt()
            except ConfluenceRagError as exc:
                logger.warning("job scan failed, retrying in %.0f s: %s", interval, exc.message)
            await asyncio.sleep(interval)

    async def _adopt(self) -> None:
        """Launch queued jobs and those orphaned by a crash."""
        for job in await self._store.list_jobs(active_only=True):
            if job.id in self._tasks or self._stopping:
                continue
            if job.kind not in self._handlers:
                continue
            if job.status == "queued" or self._is_stale(job):
                self._launch(job.id)

    def _is_stale(self, job: JobRecord) -> bool:
        """A running job whose lease ran out: its process died (or hung) mid-job."""
        if job.status != "running":
            return False
        if job.lease_expires_at is not None:
            return _now() > _aware(job.lease_expires_at)
        beat = job.heartbeat_at or job.started_at or job.created_at
        if beat is None:
            return True
        return _now() - _aware(beat) > timedelta(seconds=self._settings.job_lease_seconds)

    def _lease(self) -> dict[str, Any]:
        now = _now()
        return {
            "heartbeat_at": now,
            "lease_owner": self.worker_id,
            "lease_expires_at": now + timedelta(seconds=self._settings.job_lease_seconds),
        }

    def _launch(self, job_id: str) -> None:
        if job_id in self._tasks:
            return
        task = asyncio.create_task(self._run(job_id), name=f"job-{job_id}")
        self._tasks[job_id] = task
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for job_id, known in list(self._tasks.items()):
            if known is task:
                del self._tasks[job_id]
        if not task.cancelled() and (exc := task.exception()) is not None:
            # Only bookkeeping can fail here (the store went away while finishing a job): the
            # job keeps a stale heartbeat and is resumed by the next scan or start.
            logger.error("job task %s failed: %s", task.get_name(), exc)

    # --- running one job ----------------------------------------------------------------------
    async def _run(self, job_id: str) -> None:
        assert self._slots is not None
        async with self._slots:
            if self._stopping:
                return
            context = await self._claim(job_id)
            if context is None:
                return
            try:
                await self._execute(context)
            finally:
                self._contexts.pop(job_id, None)
                self._work.pop(job_id, None)
                self._notify()

    async def _claim(self, job_id: str) -> JobContext | None:
        """Take the job for this process, or None if it is finished or owned elsewhere."""
        job = await self._store.get_job(job_id)
        if job.status in TERMINAL:
            return None
        if job.status == "running" and not self._is_stale(job):
            return None  # a live process runs it
        if job.cancel_requested:
            await self._store.update_job(
                job_id, status="cancelled", stage="cancelled", finished_at=_now()
            )
            self._notify()
            return None
        checkpoint = dict(job.checkpoint or {})
        attempt = int(checkpoint.get("attempt", 0)) + 1
        checkpoint["attempt"] = attempt
        checkpoint["worker"] = self.worker_id
        progress = JobProgress(
            stage="checking",
            percent=job.percent or 0.0,
            log=job.log or (),
            finished_spaces=checkpoint.get("finished_spaces"),
        )
        if attempt > 1:
            was = "interrupted" if job.status == "queued" else "orphaned by a crash"
            progress.log(f"resuming (attempt {attempt}): the previous run was {was}")
        else:
            progress.log(f"{job.kind} started")
        await self._store.update_job(
            job_id,
            status="running",
            started_at=job.started_at or _now(),
            **self._lease(),
            checkpoint=checkpoint,
            error=None,
            **progress.snapshot(),
        )
        job = await self._store.get_job(job_id)
        context = JobContext(job=job, attempt=attempt, progress=progress, checkpoint=checkpoint)
        self._contexts[job_id] = context
        self._notify()
        return context

    async def _execute(self, context: JobContext) -> None:
        job = context.job
        handler = self._handlers[job.kind]
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
            if context.cancel_event.is_set():
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
        await self._finish(context, status, error, attempt_started)

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
        await self._store.update_job(job.id, **fields)
        try:
            if status == "completed":
                await self._store.update_source(
                    job.source_id,
                    last_sync_at=attempt_started,
                    sync_status="active",
                    sync_error=None,
                )
            elif status == "failed":
                await self._store.update_source(
                    job.source_id, sync_status="error", sync_error=error
                )
        except SourceNotFound:
            pass  # the source was deleted while its job ran: nothing left to mark
        logger.info("job %s %s", job.id, status)
        self._notify()

    async def _monitor(self, context: JobContext, work: asyncio.Task[None]) -> None:
        """Persist progress (throttled), beat the heartbeat, and pick up cancels from the DB."""
        job_id = context.job.id
        heartbeat = self._settings.job_heartbeat_seconds
        interval = min(FLUSH_SECONDS, heartbeat)
        written_version = -1
        last_beat = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            progress = context.progress
            progress.recompute_percent()
            fields: dict[str, Any] = {}
            if progress.version != written_version:
                context.checkpoint["finished_spaces"] = progress.finished_spaces
                fields.update(progress.snapshot(), checkpoint=context.checkpoint)
                written_version = progress.version
            if fields or time.monotonic() - last_beat >= heartbeat:
                fields.update(self._lease())
                last_beat = time.monotonic()
                await self._store.update_job(job_id, **fields)
                self._notify()
            current = await self._store.get_job(job_id)
            if current.cancel_requested and not context.cancel_event.is_set():
                context.cancel_event.set()
                work.cancel()

    def _notify(self) -> None:
        """Wake every watcher: they re-read the store and yield what changed."""
        event, self._changed = self._changed, asyncio.Event()
        event.set()


def new_job_record(source_id: str, kind: str) -> JobRecord:
    now = _now()
    return JobRecord(
        id=str(uuid.uuid4()),
        source_id=source_id,
        kind=kind,
        status="queued",
        stage="queued",
        percent=0.0,
        counters={},
        log=[_line(f"{kind} queued")],
        error=None,
        checkpoint={},
        cancel_requested=False,
        created_at=now,
        started_at=None,
        finished_at=None,
        heartbeat_at=None,
    )


def scrub(message: str, secrets: list[str]) -> str:
    """Remove known secret values from a message before it is stored or shown."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
    return message[:ERROR_CHARS]


def _summary(counters: Mapping[str, int]) -> str:
    names = ("pages_added", "pages_updated", "pages_unchanged", "pages_skipped", "pages_failed")
    parts = [f"{name.removeprefix('pages_')} {counters.get(name, 0)}" for name in names]
    parts.append(f"chunks embedded {counters.get('chunks_embedded', 0)}")
    parts.append(f"reused {counters.get('chunks_reused', 0)}")
    return ", ".join(parts)


def _line(message: str) -> str:
    return f"{_now().strftime('%H:%M:%S')} {message}"


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _hostname() -> str:
    import socket

    return socket.gethostname()


def _pid() -> int:
    import os

    return os.getpid()
