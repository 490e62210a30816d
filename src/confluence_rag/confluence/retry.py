"""When to retry a Confluence request, how long to wait, and how many may be in flight.

Three separate jobs, all free of HTTP I/O so they are unit-tested directly:

- :func:`classify_status` names *why* a response is worth retrying (or None if it is not):
  429 and 503 are rate limits/overload, Data Center's 403 with "Rate limit exceeded" is a rate
  limit in disguise, 500/502/504 are transient server failures.
- :class:`RetryPolicy` turns an attempt number and an optional ``Retry-After`` into a delay:
  the server's word (clamped to a sane range) when it gives one, else exponential backoff with
  full jitter so many clients do not retry in lock step.
- :class:`SiteLimiter` bounds requests in flight per site. :class:`SiteLimiterRegistry` hands
  every client of the same site (same event loop) the same limiter, so several crawls of one
  site share one budget instead of multiplying it.
"""

from __future__ import annotations

import asyncio
import random
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

from confluence_rag.errors import ConfigurationError


class RetryReason(StrEnum):
    """Why a request is retried; the values are the log text and the ``stats`` keys."""

    RATE_LIMITED = "429 rate limited"
    RATE_LIMITED_403 = "403 rate limit exceeded"
    UNAVAILABLE = "503 service unavailable"
    SERVER_ERROR = "500 server error"
    BAD_GATEWAY = "502 bad gateway"
    GATEWAY_TIMEOUT = "504 gateway timeout"
    TIMEOUT = "timeout"
    CONNECT = "could not connect"
    DROPPED = "connection dropped mid-response"
    MALFORMED = "malformed response body"

    @property
    def is_rate_limit(self) -> bool:
        """Rate limits honour ``Retry-After``; the others back off exponentially."""
        return self in (
            RetryReason.RATE_LIMITED,
            RetryReason.RATE_LIMITED_403,
            RetryReason.UNAVAILABLE,
        )


_STATUS_REASONS = {
    429: RetryReason.RATE_LIMITED,
    503: RetryReason.UNAVAILABLE,
    500: RetryReason.SERVER_ERROR,
    502: RetryReason.BAD_GATEWAY,
    504: RetryReason.GATEWAY_TIMEOUT,
}


def classify_status(status: int, body_text: str = "") -> RetryReason | None:
    """The retry reason for an HTTP status (and, for 403, its body), or None: not retryable."""
    if status == 403 and "rate limit exceeded" in body_text.lower():
        return RetryReason.RATE_LIMITED_403
    return _STATUS_REASONS.get(status)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    Returns None when the header is absent or unreadable (the caller then backs off on its own);
    a date in the past gives 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN / inf
            return None
        return max(0.0, seconds)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 7231 dates are GMT; "-0000" parses naive
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times to retry and how long to wait.

    ``retry_after_min``/``retry_after_max`` clamp what a server asks for: a 0 or a past date
    must not turn into a hot loop, and an hour-long ``Retry-After`` must not park a crawl
    silently (the request then fails after its budget instead, with a clear error).
    """

    max_retries: int = 8
    base_delay: float = 0.5
    max_delay: float = 30.0
    retry_after_min: float = 1.0
    retry_after_max: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (0-based)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(attempt, 30)))
        return self.rng.uniform(0.0, ceiling)

    def clamp_retry_after(self, seconds: float) -> float:
        return min(self.retry_after_max, max(self.retry_after_min, seconds))

    def delay(self, attempt: int, reason: RetryReason, retry_after: float | None) -> float:
        """The wait before retry ``attempt``: the server's clamped ``Retry-After`` for a rate
        limit that gave one (plus a little jitter so parallel crawls spread out), else backoff.
        A rate limit without a header waits at least ``retry_after_min``."""
        if retry_after is not None and reason.is_rate_limit:
            wanted = self.clamp_retry_after(retry_after)
            return wanted + self.rng.uniform(0.0, min(1.0, wanted * 0.1))
        if reason.is_rate_limit:
            return max(self.retry_after_min, self.backoff(attempt))
        return self.backoff(attempt)

    def exhausted(self, retries_done: int) -> bool:
        return retries_done >= self.max_retries


class SiteLimiter:
    """At most ``limit`` requests in flight to one site; counts the peak for tests and stats."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ConfigurationError("max_concurrent_requests_per_site must be at least 1")
        self.limit = limit
        self._semaphore = asyncio.Semaphore(limit)
        self.in_flight = 0
        self.peak = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            try:
                yield
            finally:
                self.in_flight -= 1


class SiteLimiterRegistry:
    """One :class:`SiteLimiter` per (event loop, site).

    asyncio primitives belong to one event loop, so limiters are kept per loop (weakly: a
    finished loop takes its limiters with it). The first client of a site fixes its limit;
    later clients with another setting share the existing one (one budget per site is the
    point), which :meth:`get` reports through the returned limiter's ``limit``.
    """

    def __init__(self) -> None:
        self._by_loop: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str, SiteLimiter]
        ] = weakref.WeakKeyDictionary()

    def get(self, site_key: str, limit: int) -> SiteLimiter:
        loop = asyncio.get_running_loop()
        sites = self._by_loop.setdefault(loop, {})
        limiter = sites.get(site_key)
        if limiter is None:
            limiter = sites[site_key] = SiteLimiter(limit)
        return limiter


# The process-wide registry clients use unless given their own. It holds no configuration:
# limits come from each client's Settings, and it is empty until a client runs.
DEFAULT_LIMITERS = SiteLimiterRegistry()
