"""One GET to a Confluence site, retried: the client's only door to the network.

:class:`SiteSession` owns the ``httpx.AsyncClient`` (pooling, timeouts, injectable transport),
takes a slot of the site's shared limiter for every request, retries what is worth retrying
(``retry.py`` decides), logs each retry with its reason, counts everything in
:class:`ClientStats`, and gives up with :class:`RetryBudgetExhausted` or
:class:`ConfluenceUnreachable`. It returns any other final response as is: what a 401 or 404
*means* depends on the operation, so the client maps those.

The ``Authorization`` header is set once on the httpx client and never formatted into a message
or log line; URLs carry only CQL, ids and paths.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from confluence_rag.confluence.auth import SiteAuth
from confluence_rag.confluence.outbound import guarded_transport
from confluence_rag.confluence.retry import (
    DEFAULT_LIMITERS,
    RetryPolicy,
    RetryReason,
    SiteLimiter,
    SiteLimiterRegistry,
    classify_status,
    parse_retry_after,
)
from confluence_rag.confluence.site import SiteURL
from confluence_rag.errors import (
    ClientClosed,
    ConfluenceError,
    ConfluenceUnreachable,
    RetryBudgetExhausted,
)
from confluence_rag.settings import Settings

logger = logging.getLogger("confluence_rag.confluence")

SleepFunc = Callable[[float], Awaitable[None]]
ShrinkFunc = Callable[[str], "str | None"]

# Connect failures (refused, DNS, TLS) are retried only this often: a host that is not there
# should fail a credentials check in seconds, not after minutes of backoff.
CONNECT_RETRIES = 2


@dataclass(slots=True)
class ClientStats:
    """Counters tests and benchmarks read. ``sleep_seconds`` is the total waited before retries;
    ``retry_after_seconds`` what servers asked for (after clamping), so sleep >= retry_after."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    sleep_seconds: float = 0.0
    retry_after_seconds: float = 0.0
    limit_reductions: int = 0
    offset_corrections: int = 0
    duplicates_skipped: int = 0

    @property
    def total_retries(self) -> int:
        return sum(self.retries.values())


@dataclass(slots=True)
class Reply:
    """The final response to a GET, the URL that got it, and its JSON for a 200."""

    response: httpx.Response
    url: str
    payload: Any = None

    @property
    def status(self) -> int:
        return self.response.status_code


class SiteSession:
    def __init__(
        self,
        site: SiteURL,
        auth: SiteAuth,
        *,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: SleepFunc | None = None,
        limiters: SiteLimiterRegistry | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.site = site
        self.policy = policy or RetryPolicy(
            max_retries=settings.max_retries, retry_after_max=settings.retry_after_max_seconds
        )
        self.stats = ClientStats()
        self._concurrency = settings.max_concurrent_requests_per_site
        self._sleep: SleepFunc = sleep or asyncio.sleep
        self._registry = limiters or DEFAULT_LIMITERS
        self._limiter: SiteLimiter | None = None
        self.http = httpx.AsyncClient(
            # every request (each redirect hop too) passes the SSRF guard (outbound.py)
            transport=guarded_transport(site.api_base, settings, transport),
            timeout=httpx.Timeout(settings.http_timeout_seconds),
            headers={
                "Authorization": auth.header(),
                "Accept": "application/json",
                "User-Agent": "confluence-rag",
            },
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def _check_open(self) -> None:
        # httpx raises a bare RuntimeError for a closed client; name it. No await separates
        # this check from httpx's own, so the client cannot close in between.
        if self.http.is_closed:
            raise ClientClosed("the Confluence client is closed: the job it served has ended")

    @property
    def limiter(self) -> SiteLimiter:
        """The site's shared limiter (looked up on first use, inside the running event loop)."""
        if self._limiter is None:
            self._limiter = self._registry.get(self.site.key, self._concurrency)
        return self._limiter

    async def get_json(self, url: str, *, shrink: ShrinkFunc | None = None) -> Reply:
        """GET ``url`` until it succeeds, fails for good, or the retry budget is spent.

        A 200 comes back with its parsed JSON; a 200 that is not valid JSON (a response cut off
        mid-way) is retried. ``shrink`` turns a 504 into an immediate retry of a lighter URL.
        The site slot is held across retries: a request waiting out a ``Retry-After`` keeps its
        place, so a rate-limited site sees fewer requests from us, not more.
        """
        retries = 0
        async with self.limiter.slot():
            while True:
                self.stats.requests += 1
                self._check_open()
                try:
                    response = await self.http.get(url)
                except httpx.TransportError as error:
                    await self.before_retry(url, transport_reason(error), None, retries, error)
                    retries += 1
                    continue
                if response.status_code == 200:
                    try:
                        return Reply(response=response, url=url, payload=response.json())
                    except ValueError as error:
                        reason = RetryReason.MALFORMED
                        await self.before_retry(url, reason, None, retries, error)
                        retries += 1
                        continue
                status = response.status_code
                maybe = classify_status(status, response.text if status == 403 else "")
                if maybe is None:
                    return Reply(response=response, url=url)
                reason = maybe
                smaller = None
                if reason is RetryReason.GATEWAY_TIMEOUT and shrink is not None:
                    smaller = shrink(url)
                if smaller is not None:
                    # the same position with a lighter page: no reason to wait
                    if self.policy.exhausted(retries):
                        raise self._exhausted(url, reason, retries, None)
                    self._log_retry(url, reason, retries, 0.0, self.policy.max_retries)
                    retries += 1
                    url = smaller
                    continue
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                await self.before_retry(url, reason, retry_after, retries, None)
                retries += 1

    async def open_stream(self, url: str) -> Reply:
        """GET ``url`` for streaming, following redirects (Cloud sends downloads to its media
        store; httpx drops our Authorization header when a redirect leaves the site).

        A 200 comes back *open*: the caller must ``aclose()`` its response. Any other final
        status comes back read and closed. The caller holds the limiter slot while streaming.
        """
        retries = 0
        while True:
            self.stats.requests += 1
            self._check_open()
            request = self.http.build_request("GET", url)
            try:
                response = await self.http.send(request, stream=True, follow_redirects=True)
                if response.status_code == 200:
                    return Reply(response=response, url=url)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
            except httpx.TransportError as error:
                await self.before_retry(url, transport_reason(error), None, retries, error)
                retries += 1
                continue
            status = response.status_code
            maybe = classify_status(status, response.text if status == 403 else "")
            if maybe is None:
                return Reply(response=response, url=url)
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            await self.before_retry(url, maybe, retry_after, retries, None)
            retries += 1

    async def before_retry(
        self,
        url: str,
        reason: RetryReason,
        retry_after: float | None,
        retries: int,
        error: BaseException | None,
    ) -> None:
        """Give up (raise) if the budget is spent, else log, count and sleep."""
        budget = self.policy.max_retries
        if reason is RetryReason.CONNECT:
            budget = min(budget, CONNECT_RETRIES)
        if retries >= budget:
            raise self._exhausted(url, reason, retries, error)
        delay = self.policy.delay(retries, reason, retry_after)
        if retry_after is not None and reason.is_rate_limit:
            self.stats.retry_after_seconds += self.policy.clamp_retry_after(retry_after)
        self._log_retry(url, reason, retries, delay, budget)
        self.stats.sleep_seconds += delay
        await self._sleep(delay)

    def _log_retry(
        self, url: str, reason: RetryReason, retries: int, delay: float, budget: int
    ) -> None:
        self.stats.retries[reason.value] += 1
        logger.warning(
            "retrying GET %s in %.2fs (%s; retry %d of %d)",
            short(url),
            delay,
            reason.value,
            retries + 1,
            budget,
        )

    def _exhausted(
        self, url: str, reason: RetryReason, retries: int, error: BaseException | None
    ) -> ConfluenceError:
        base = self.site.api_base
        if reason in (RetryReason.CONNECT, RetryReason.TIMEOUT) and error is not None:
            return ConfluenceUnreachable(
                f"Could not reach Confluence at {base}: {describe_transport(error)} "
                f"(after {retries + 1} attempts). Check the site URL, your network or proxy, "
                "and that the site is up.",
                details={"site": base, "reason": reason.value},
            )
        return RetryBudgetExhausted(
            f"Confluence at {base} kept failing ({reason.value}) on {short(url)} after "
            f"{retries} retries: the site is overloaded or rate-limiting. Try again later or "
            "lower max_concurrent_requests_per_site.",
            details={"site": base, "reason": reason.value, "retries": retries},
        )


def transport_reason(error: httpx.TransportError) -> RetryReason:
    if isinstance(error, httpx.TimeoutException):
        return RetryReason.TIMEOUT
    if isinstance(error, httpx.ConnectError):
        return RetryReason.CONNECT
    # reset, closed mid-response, protocol error: the server was there and may be again
    return RetryReason.DROPPED


def describe_transport(error: BaseException) -> str:
    """What went wrong on the wire, in words a user can act on.

    httpx wraps the operating system's error (anyio reports "All connection attempts failed"),
    so the cause chain is searched for the error that names the problem.
    """
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for item in chain:
        if isinstance(item, socket.gaierror):
            return "the host name does not resolve (DNS)"
        if isinstance(item, ConnectionRefusedError):
            return "the connection was refused (nothing listens on that port)"
        if isinstance(item, ssl.SSLError):
            return f"the TLS handshake failed ({item})"[:300]
    text = " ".join(str(item) for item in chain).lower()
    dns_signs = ("name or service not known", "nodename nor servname", "name resolution")
    if any(sign in text for sign in dns_signs):
        return "the host name does not resolve (DNS)"
    if "connection refused" in text or "connect call failed" in text:
        return "the connection was refused (nothing listens on that port)"
    if "certificate" in text or "ssl" in text:
        return f"the TLS handshake failed ({str(error)[:200]})"
    if isinstance(error, httpx.TimeoutException):
        return "the request timed out"
    return f"{type(error).__name__}: {(str(error) or 'no detail')[:200]}"


def short(url: str) -> str:
    return url if len(url) <= 200 else url[:197] + "..."
