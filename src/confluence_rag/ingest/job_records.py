"""Job records, the small helpers around them, and the runner's concurrency slot.

Kept apart from ``jobs.py`` so the runner module holds only scheduling and execution.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from confluence_rag.records import JobRecord, job_kind

ACTIVE = ("queued", "running")
TERMINAL = ("completed", "failed", "cancelled")
ERROR_CHARS = 2000


def new_job_record(source_id: str, kind: str) -> JobRecord:
    created = now()
    return JobRecord(
        id=str(uuid.uuid4()),
        source_id=source_id,
        kind=job_kind(kind),
        status="queued",
        stage="queued",
        percent=0.0,
        counters={},
        log=[log_line(f"{kind} queued")],
        error=None,
        checkpoint={},
        cancel_requested=False,
        created_at=created,
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


def summary(counters: Mapping[str, int]) -> str:
    names = ("pages_added", "pages_updated", "pages_unchanged", "pages_skipped", "pages_failed")
    parts = [f"{name.removeprefix('pages_')} {counters.get(name, 0)}" for name in names]
    parts.append(f"chunks embedded {counters.get('chunks_embedded', 0)}")
    parts.append(f"reused {counters.get('chunks_reused', 0)}")
    return ", ".join(parts)


def log_line(message: str) -> str:
    return f"{now().strftime('%H:%M:%S')} {message}"


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def worker_identity() -> str:
    """``HOST:PID:RANDOM``: names a runner in leases and logs, unique across restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobSlot:
    """One of the runner's ``max_concurrent_jobs`` places, released at most once (a split
    crawl's parent gives its place back as soon as it knows it only follows its children)."""

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self.held = False

    async def acquire(self) -> None:
        await self._semaphore.acquire()
        self.held = True

    def release(self) -> None:
        if self.held:
            self.held = False
            self._semaphore.release()
