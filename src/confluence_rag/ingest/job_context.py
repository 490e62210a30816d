"""What a job handler (crawl, sync, a split crawl's parent) gets from the runner.

Apart from ``jobs.py`` so handlers depend on this small contract, not on the runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from confluence_rag.errors import JobCancelled
from confluence_rag.ingest.progress import JobProgress
from confluence_rag.records import JobRecord


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
    # A per-space child job covers only these spaces of its source (None: all of them).
    spaces: tuple[str, ...] | None = None
    # Set when the lease was lost (another runner owns the job now): nothing more is written.
    lost: bool = False

    def raise_if_cancelled(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled("the job was cancelled")


JobHandler = Callable[[JobContext], Coroutine[Any, Any, None]]
