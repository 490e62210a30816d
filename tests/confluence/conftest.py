"""Helpers for client tests: credentials for an emulator, a sleep that records, a runner."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluence_rag.confluence.client import SiteAuth
from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
    RESTRICTED_PAT,
    EmulatorServer,
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Each test runs its own event loop (no async plugin needed)."""
    return asyncio.run(coro)


def auth_for(server: EmulatorServer, *, restricted: bool = False) -> SiteAuth:
    """The emulator's demo (or restricted) user, with the credential kind of its flavour."""
    if server.config.flavour == "cloud":
        if restricted:
            return SiteAuth.cloud(RESTRICTED_EMAIL, RESTRICTED_API_TOKEN)
        return SiteAuth.cloud(DEMO_EMAIL, DEMO_API_TOKEN)
    return SiteAuth.datacenter(RESTRICTED_PAT if restricted else DEMO_PAT)


@dataclass
class RecordedSleep:
    """Stands in for ``asyncio.sleep`` before retries: records the delay, yields, returns.

    Only the waiting is skipped; every request still goes over the socket to the emulator.
    """

    calls: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)

    @property
    def total(self) -> float:
        return sum(self.calls)


def served(server: EmulatorServer, path_contains: str, expected: int, *, wait: float = 30.0) -> int:
    """The emulator's count of served requests, once it reaches ``expected`` (or ``wait`` s).

    The emulator logs a request after its response is sent, so a fast client can finish before
    the last entry lands; polling removes that race without hiding a wrong count (a right count
    returns at once; ``wait`` only bounds a wrong one, generously for a busy machine).
    """
    deadline = time.monotonic() + wait
    while True:
        count = server.state.request_count(path_contains)
        if count >= expected or time.monotonic() > deadline:
            return count
        time.sleep(0.01)
