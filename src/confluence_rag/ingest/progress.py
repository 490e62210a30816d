"""What a running job knows about itself: counters, stage, percent, recent log lines.

Pure bookkeeping, no I/O: the job runner decides when to persist it (throttled), the pipeline
only counts. Counters are kept per space so a checkpoint can record the finished spaces exactly:
a resumed job restores those and recounts only the space it was in the middle of.

Percent never goes backwards. The total is not known up front (a space may hold any number of
pages); it comes from a size hint when the listing exposes one, and otherwise is assumed to be
at least twice what was listed so far until the listing ends, so the bar moves early and then
catches up rather than overshooting and freezing.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

COUNTER_NAMES: tuple[str, ...] = (
    "pages_listed",
    "pages_processed",  # went through the pipeline and were stored
    "pages_skipped",  # should_skip said no (archived, draft, too short, ...)
    "pages_unchanged",  # already stored at the listed version (resume, sync)
    "pages_failed",  # one bad page: recorded and skipped
    "pages_added",
    "pages_updated",
    "pages_deleted",  # soft-deleted: gone, moved out of the source, restricted, or now skipped
    "pages_restored",  # stored as deleted, back in Confluence: written again and live
    "chunks_embedded",
    "chunks_reused",
)

# Pages that reached a final disposition in the pipeline: the one definition of "pages done"
# (the percent here, the API's ``pages_done`` and rate, the web page and the CLI bar all use it).
PAGES_DONE: tuple[str, ...] = (
    "pages_processed",
    "pages_skipped",
    "pages_unchanged",
    "pages_failed",
)


def pages_done(counters: Mapping[str, int]) -> int:
    """Pages a job has finished with, from its counters (a missing counter counts 0)."""
    return sum(int(counters.get(name, 0)) for name in PAGES_DONE)


# Where each stage starts on the bar; processing spans from its start to "finalizing".
STAGE_START: dict[str, float] = {
    "queued": 0.0,
    "checking": 0.0,
    "listing": 2.0,
    "processing": 2.0,
    "finalizing": 99.0,
    "done": 100.0,
}

DEFAULT_LOG_LINES = 50


class JobProgress:
    """Mutable progress of one job attempt. ``version`` grows on every change."""

    def __init__(
        self,
        *,
        stage: str = "queued",
        percent: float = 0.0,
        log: Iterable[str] = (),
        log_limit: int = DEFAULT_LOG_LINES,
        finished_spaces: Mapping[str, Mapping[str, int]] | None = None,
    ) -> None:
        self.stage = stage
        self.percent = float(percent)
        self.log_lines: deque[str] = deque(log, maxlen=log_limit)
        self.version = 0
        self._spaces: dict[str, Counter[str]] = {}
        self._finished: dict[str, Counter[str]] = {}
        for key, counts in (finished_spaces or {}).items():
            self._finished[key] = Counter({k: int(v) for k, v in counts.items()})
        self._hints: dict[str, int] = {}
        self._listing_done: set[str] = set(self._finished)
        self.max_pages: int | None = None
        self.spaces: tuple[str, ...] = tuple(self._finished)

    def declare_spaces(self, spaces: Iterable[str]) -> None:
        """The spaces this job covers, in order: the percent is computed over them."""
        self.spaces = tuple(spaces)

    # --- counting -------------------------------------------------------------------------
    def count(self, space: str, name: str, n: int = 1) -> None:
        if name not in COUNTER_NAMES:
            raise KeyError(name)
        if n:
            self._spaces.setdefault(space, Counter())[name] += n
            self._changed()

    def counters(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for counts in (*self._finished.values(), *self._spaces.values()):
            total.update(counts)
        return {name: int(total[name]) for name in COUNTER_NAMES}

    def space_counters(self, space: str) -> dict[str, int]:
        counts = self._finished.get(space) or self._spaces.get(space) or Counter()
        return {name: int(counts[name]) for name in COUNTER_NAMES}

    def finish_space(self, space: str) -> None:
        """Every page of ``space`` is listed and disposed of: its counts become final."""
        self._finished[space] = self._spaces.pop(space, Counter())
        self._listing_done.add(space)
        self._changed()

    @property
    def finished_spaces(self) -> dict[str, dict[str, int]]:
        return {key: dict(counts) for key, counts in self._finished.items()}

    def is_finished(self, space: str) -> bool:
        return space in self._finished

    def listing_done(self, space: str) -> None:
        self._listing_done.add(space)
        self._changed()

    def size_hint(self, space: str, total: int) -> None:
        """The listing said how many pages ``space`` holds (CQL ``totalSize``)."""
        if total >= 0:
            self._hints[space] = total
            self._changed()

    # --- stage, log, percent --------------------------------------------------------------
    def set_stage(self, stage: str) -> None:
        if stage != self.stage:
            self.stage = stage
            self._changed()

    def log(self, message: str, *, now: datetime | None = None) -> None:
        stamp = (now or datetime.now(UTC)).strftime("%H:%M:%S")
        self.log_lines.append(f"{stamp} {message}")
        self._changed()

    def complete(self) -> None:
        self.stage = "done"
        self.percent = 100.0
        self._changed()

    def estimate_total(self, spaces: Iterable[str] | None = None) -> int | None:
        """Pages this job will dispose of, or None when nothing is known yet."""
        total = 0
        known = False
        for space in self.spaces if spaces is None else spaces:
            counts = self._finished.get(space) or self._spaces.get(space) or Counter()
            listed = counts["pages_listed"]
            if space in self._listing_done:
                total += listed
                known = True
            elif space in self._hints:
                total += max(self._hints[space], listed)
                known = True
            else:
                # Unknown size: assume as many again are still to come.
                total += 2 * listed
                known = known or listed > 0
        if self.max_pages is not None:
            total = min(total, self.max_pages)
        return total if known else None

    def recompute_percent(self, spaces: Iterable[str] | None = None) -> float:
        """Move the bar for the processing stage; never backwards, never 100 before the end."""
        done = pages_done(self.counters())
        total = self.estimate_total(spaces)
        start = STAGE_START["processing"]
        span = STAGE_START["finalizing"] - start
        if total:
            value = start + span * min(1.0, done / total)
        else:
            value = STAGE_START.get(self.stage, 0.0)
        value = max(value, STAGE_START.get(self.stage, 0.0))
        value = min(value, 99.0)
        if value > self.percent + 0.05:
            self.percent = round(value, 1)
            self._changed()
        return self.percent

    def snapshot(self) -> dict[str, Any]:
        """The fields the runner persists."""
        return {
            "stage": self.stage,
            "percent": self.percent,
            "counters": self.counters(),
            "log": list(self.log_lines),
        }

    def _changed(self) -> None:
        self.version += 1
