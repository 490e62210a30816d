"""A crawl of several spaces, split into one job per space so several workers share it.

Design (deliberately plain): the job a person started (the *parent*, whose id is the progress
id they poll) does not crawl. When a runner claims it and splitting applies, the parent

1. writes the ids of its per-space *child* jobs into its checkpoint (``children``: space key ->
   job id) before creating them, so a parent resumed after a crash finds the same children
   (and creates any the crash left unborn) instead of starting a second set;
2. creates the children as ordinary queued ``crawl`` jobs whose checkpoint names the parent and
   their one space (``parent``, ``spaces``): any runner claims them through the same leases as
   any job, so two workers crawl two spaces at once, and a child whose worker dies is taken over
   and resumed like any other job;
3. follows them: it sums their counters into its own progress, logs each space's changes, and
   ends when they have all ended: ``completed`` if they all did, ``failed`` (naming the space)
   if one failed, ``cancelled`` if one was cancelled (the others are then cancelled too).

Following is waiting, so the parent gives its runner slot back. Cancelling the parent cancels
its children (``JobRunner.cancel``). Only the parent updates the source's sync status.

Splitting applies to ``crawl`` jobs of sources with two or more spaces and no ``max_pages`` (a
page budget is shared across spaces; splitting it would change what gets crawled). It is on by
default with PostgreSQL, where several worker processes share the queue, and off with SQLite
(one process runs the jobs); ``CONFLUENCE_RAG_SPLIT_SPACES`` overrides either way.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from confluence_rag.errors import ConfluenceRagError, JobCancelled, JobNotFound
from confluence_rag.ingest.job_context import JobContext
from confluence_rag.ingest.jobs import FLUSH_SECONDS, TERMINAL, new_job_record
from confluence_rag.ingest.progress import COUNTER_NAMES, JobProgress, pages_done
from confluence_rag.records import JobRecord
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

if TYPE_CHECKING:
    from confluence_rag.ingest.jobs import JobRunner


def split_enabled(settings: Settings) -> bool:
    """Whether new multi-space crawls are split: the setting, else on for PostgreSQL."""
    if settings.split_spaces is not None:
        return settings.split_spaces
    return settings.backend == "postgres"


async def should_split(store: Store, settings: Settings, context: JobContext) -> bool:
    """Whether this claimed job follows per-space children instead of crawling itself."""
    checkpoint = context.checkpoint
    if checkpoint.get("children"):
        return True  # split before (maybe by a runner with other settings): keep following
    job = context.job
    if job.kind != "crawl" or checkpoint.get("parent") or context.spaces:
        return False
    if not split_enabled(settings):
        return False
    source = await store.get_source(job.source_id)
    return len(source.space_keys) >= 2 and source.max_pages is None


def child_record(parent: JobRecord, space: str, child_id: str) -> JobRecord:
    """A queued crawl of one space of ``parent``'s source."""
    record = new_job_record(parent.source_id, "crawl")
    first = record.log[0].split(" ", 1)[0]  # the time stamp
    return replace(
        record,
        id=child_id,
        log=[f"{first} crawl of space {space} queued (part of job {parent.id})"],
        checkpoint={"parent": parent.id, "spaces": [space]},
    )


class SplitFollower:
    """The parent's work: create the per-space jobs, then follow them to their end."""

    def __init__(self, store: Store, runner: JobRunner) -> None:
        self._store = store
        self._runner = runner

    async def run(self, context: JobContext) -> None:
        progress = context.progress
        children = await self._ensure_children(context)
        progress.declare_spaces(children)
        progress.set_stage("processing")
        tracker = _Tracker(progress)
        try:
            while True:
                states = {space: await self._store.get_job(cid) for space, cid in children.items()}
                tracker.absorb(states)
                if all(job.status in TERMINAL for job in states.values()):
                    break
                cancelled = [s for s, job in states.items() if job.status == "cancelled"]
                if cancelled:
                    progress.log(f"space {cancelled[0]} was cancelled: cancelling the others")
                    await self._runner.cancel(context.job.id)  # cancels this task too
                await asyncio.sleep(FLUSH_SECONDS)
        except asyncio.CancelledError:
            if context.cancel_event.is_set():
                # A cancel that raced the creation of the children may have missed some.
                for child_id in children.values():
                    await self._runner.cancel(child_id)
            raise
        progress.set_stage("finalizing")
        failed = [(s, job) for s, job in states.items() if job.status == "failed"]
        if failed:
            space, job = failed[0]
            others = f" (and {len(failed) - 1} more space(s))" if len(failed) > 1 else ""
            raise ConfluenceRagError(f"space {space}: {job.error or 'failed'}{others}")
        if any(job.status == "cancelled" for job in states.values()):
            context.cancel_event.set()
            raise JobCancelled("a space of this crawl was cancelled")

    async def _ensure_children(self, context: JobContext) -> dict[str, str]:
        job, progress = context.job, context.progress
        planned = dict(context.checkpoint.get("children") or {})
        children = {str(space): str(child_id) for space, child_id in planned.items()}
        if not children:
            source = await self._store.get_source(job.source_id)
            children = {key: str(uuid.uuid4()) for key in source.space_keys}
            # Recorded before they exist: a crash in between leaves ids to create, not orphans.
            context.checkpoint["children"] = children
            await self._store.update_job(job.id, checkpoint=context.checkpoint)
            progress.log(
                f"split into {len(children)} per-space jobs so workers crawl them in parallel: "
                + ", ".join(f"{space} ({cid})" for space, cid in children.items())
            )
        for space, child_id in children.items():
            try:
                await self._store.get_job(child_id)
            except JobNotFound:
                await self._store.create_job(child_record(job, space, child_id))
        self._runner.poke()
        return children


class _Tracker:
    """Folds the children's persisted progress into the parent's ``JobProgress``."""

    def __init__(self, progress: JobProgress) -> None:
        self._progress = progress
        self._applied: dict[str, dict[str, int]] = {}
        self._seen: dict[str, tuple[str, str | None]] = {}

    def absorb(self, states: dict[str, JobRecord]) -> None:
        progress = self._progress
        for space, child in states.items():
            self._log_change(space, child)
            if progress.is_finished(space):
                continue  # its final counts are in the parent's checkpoint already
            counters = {name: int(child.counters.get(name, 0)) for name in COUNTER_NAMES}
            before = self._applied.get(space, {})
            for name, value in counters.items():
                # A child resumed by another worker recounts its space: deltas may be < 0.
                progress.count(space, name, value - before.get(name, 0))
            self._applied[space] = counters
            done = pages_done(counters)
            if 2.0 < child.percent < 99.0 and done:
                # The child's own estimate of its space's size, so the parent's bar is the
                # page-weighted sum of its spaces' bars.
                progress.size_hint(space, round(done * 97.0 / (child.percent - 2.0)))
            if child.status == "completed":
                progress.finish_space(space)

    def _log_change(self, space: str, child: JobRecord) -> None:
        key = (child.status, child.lease_owner)
        if self._seen.get(space) == key:
            return
        self._seen[space] = key
        if child.status == "running" and child.lease_owner:
            self._progress.log(f"space {space}: running on {child.lease_owner}")
        elif child.status == "failed":
            self._progress.log(f"space {space}: failed: {child.error}")
        elif child.status == "completed":
            processed = int(child.counters.get("pages_processed", 0))
            unchanged = int(child.counters.get("pages_unchanged", 0))
            self._progress.log(
                f"space {space}: completed ({processed} pages stored, {unchanged} unchanged)"
            )
        else:
            self._progress.log(f"space {space}: {child.status}")
