"""The sync scheduler: runs inside ``serve`` and queues a sync for every source that is due.

A source is due when ``sync_frequency_hours`` (> 0) have passed since its reference time: the
later of its last completed crawl or sync (``last_sync_at``) and the creation of its newest job,
whatever became of it. So a sync that failed is retried a period later, not on every check; a
source whose first crawl never finished gets its (full) sync a period after that attempt; and a
job that just completed counts even in the instant before the runner records ``last_sync_at``
(no second sync in that gap). A source with neither counts from when it was added. Paused and
manual-only (frequency 0) sources are never due.

- **Missed while down**: the first check runs as soon as the scheduler starts, so a source that
  fell due while the server was stopped is synced on start.
- **No overlap**: a source with a queued or running job is skipped; the runner's own check
  (``JobAlreadyRunning``) closes the race with a sync started by hand at the same moment.
- **Jitter**: each source's due time is pushed back by a stable pseudo-random offset of up to
  ``settings.sync_jitter_seconds`` (derived from its id and reference time), so fifty sources
  added together do not all fire in the same second, and the offset survives restarts.
- **Clean stop**: ``stop()`` cancels the loop between checks; queued jobs belong to the runner.

The check itself (``due_sources`` / ``check_once``) is separate from the loop, so tests call it
directly with a chosen "now".
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from confluence_rag.errors import ConfluenceRagError, JobAlreadyRunning
from confluence_rag.ingest.jobs import JobRunner
from confluence_rag.records import JobRecord, SourceRecord
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

logger = logging.getLogger(__name__)


class SyncScheduler:
    """Queues due syncs on a ``JobRunner`` every ``settings.sync_check_seconds``."""

    def __init__(
        self,
        store: Store,
        jobs: JobRunner,
        settings: Settings,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._jobs = jobs
        self._settings = settings
        self._clock = clock or (lambda: datetime.now(UTC))
        self._task: asyncio.Task[None] | None = None
        self.submitted: list[str] = []  # job ids queued by this scheduler (for status/tests)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start checking in the background (first check at once). Idempotent."""
        if self.running:
            return
        self._task = asyncio.create_task(self._loop(), name="sync-scheduler")

    async def stop(self) -> None:
        """Stop checking. Jobs already queued stay with the runner (it re-queues them)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _loop(self) -> None:
        interval = self._settings.sync_check_seconds
        while True:
            try:
                await self.check_once()
            except ConfluenceRagError as exc:
                # The store may be briefly unavailable; the next check tries again.
                logger.warning("sync scheduler check failed: %s", exc.message)
            await asyncio.sleep(interval)

    async def check_once(self, now: datetime | None = None) -> list[str]:
        """Queue a sync for every due source; returns the ids of the jobs queued."""
        queued: list[str] = []
        for source in await self.due_sources(now):
            try:
                job = await self._jobs.submit(source.id, "sync")
            except JobAlreadyRunning:
                continue  # started by hand (or by another server) since we looked
            except ConfluenceRagError as exc:
                logger.warning("scheduled sync of %s not queued: %s", source.id, exc.message)
                continue
            logger.info("scheduled sync of %s queued (job %s)", source.id, job.id)
            queued.append(job.id)
        self.submitted.extend(queued)
        return queued

    async def due_sources(self, now: datetime | None = None) -> list[SourceRecord]:
        """Sources whose next sync time has passed and that have no active job."""
        moment = _aware(now or self._clock())
        due: list[SourceRecord] = []
        for source in await self._store.list_sources():
            if source.paused or source.sync_frequency_hours <= 0:
                continue
            newest = await self._store.list_jobs(active_only=False, source_id=source.id, limit=1)
            if newest and newest[0].status in ("queued", "running"):
                continue
            reference = self.reference_time(source, newest[0] if newest else None)
            if reference is None:
                continue
            if moment >= self.due_at(source, reference):
                due.append(source)
        return due

    @staticmethod
    def reference_time(source: SourceRecord, newest_job: JobRecord | None) -> datetime | None:
        """What the period counts from: the later of the last completed sync and the newest
        job's creation; a source with neither counts from when it was added."""
        attempt = newest_job.created_at if newest_job is not None else None
        times = [_aware(t) for t in (source.last_sync_at, attempt) if t is not None]
        if times:
            return max(times)
        return _aware(source.created_at) if source.created_at is not None else None

    def due_at(self, source: SourceRecord, reference: datetime) -> datetime:
        period = timedelta(hours=source.sync_frequency_hours)
        return reference + period + timedelta(seconds=self.jitter_seconds(source.id, reference))

    def jitter_seconds(self, source_id: str, reference: datetime) -> float:
        """A stable offset in ``[0, sync_jitter_seconds)`` for this source and period."""
        spread = self._settings.sync_jitter_seconds
        if spread <= 0:
            return 0.0
        seed = f"{source_id}|{reference.isoformat()}".encode()
        fraction = int.from_bytes(hashlib.sha256(seed).digest()[:8], "big") / 2**64
        return fraction * spread


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
