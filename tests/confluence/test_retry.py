"""Retry decisions, Retry-After parsing, backoff, and the per-site limiter."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from confluence_rag.confluence.retry import (
    RetryPolicy,
    RetryReason,
    SiteLimiter,
    SiteLimiterRegistry,
    classify_status,
    parse_retry_after,
)
from confluence_rag.errors import ConfigurationError

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "body", "reason"),
    [
        (429, "", RetryReason.RATE_LIMITED),
        (503, "", RetryReason.UNAVAILABLE),
        (500, "", RetryReason.SERVER_ERROR),
        (502, "", RetryReason.BAD_GATEWAY),
        (504, "", RetryReason.GATEWAY_TIMEOUT),
        (403, '{"message": "Rate limit exceeded"}', RetryReason.RATE_LIMITED_403),
        (403, "RATE LIMIT EXCEEDED for user", RetryReason.RATE_LIMITED_403),
        (403, '{"message": "Not permitted to view space"}', None),
        (401, "", None),
        (404, "", None),
        (400, "Rate limit exceeded", None),  # only 403 carries the Data Center signal
        (200, "", None),
    ],
)
def test_classify_status(status: int, body: str, reason: RetryReason | None) -> None:
    assert classify_status(status, body) is reason


def test_rate_limits_are_the_ones_honouring_retry_after() -> None:
    limits = {reason for reason in RetryReason if reason.is_rate_limit}
    assert limits == {
        RetryReason.RATE_LIMITED,
        RetryReason.RATE_LIMITED_403,
        RetryReason.UNAVAILABLE,
    }


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("3", 3.0),
        (" 7 ", 7.0),
        ("1.5", 1.5),
        ("0", 0.0),
        ("-4", 0.0),
        ("nan", None),
        ("soon", None),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        ("Wed, 01 May 2024 12:00:45 GMT", 45.0),
        ("Wed, 01 May 2024 11:59:00 GMT", 0.0),  # in the past
        ("Wednesday, 01-May-24 12:00:10 GMT", 10.0),  # RFC 850, still legal
        ("Wed May  1 12:00:05 2024", 5.0),  # asctime
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_retry_after_clamped_to_policy_range() -> None:
    policy = RetryPolicy(retry_after_min=1.0, retry_after_max=60.0, rng=random.Random(1))
    assert policy.clamp_retry_after(0.0) == 1.0
    assert policy.clamp_retry_after(12.0) == 12.0
    assert policy.clamp_retry_after(3600.0) == 60.0
    # the delay honours the clamped value, plus at most 10% (max 1 s) jitter
    for asked, floor in ((0.0, 1.0), (12.0, 12.0), (3600.0, 60.0)):
        delay = policy.delay(0, RetryReason.RATE_LIMITED, asked)
        assert floor <= delay <= floor + min(1.0, floor * 0.1)


def test_rate_limit_without_header_waits_at_least_the_minimum() -> None:
    policy = RetryPolicy(retry_after_min=1.0, base_delay=0.01, rng=random.Random(2))
    assert all(policy.delay(0, RetryReason.UNAVAILABLE, None) >= 1.0 for _ in range(50))


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=8.0, rng=random.Random(3))
    for attempt in range(10):
        ceiling = min(8.0, 0.5 * 2**attempt)
        samples = [policy.delay(attempt, RetryReason.SERVER_ERROR, None) for _ in range(200)]
        assert all(0.0 <= sample <= ceiling for sample in samples)
        # full jitter: spread across the range, not bunched at the ceiling
        assert min(samples) < ceiling * 0.2 < ceiling * 0.8 < max(samples)
    # a server error ignores Retry-After (it is not a rate limit)
    assert policy.delay(0, RetryReason.SERVER_ERROR, 30.0) <= 0.5


def test_budget() -> None:
    policy = RetryPolicy(max_retries=3)
    assert [policy.exhausted(n) for n in range(5)] == [False, False, False, True, True]


def test_limiter_bounds_in_flight_and_records_peak() -> None:
    async def scenario() -> SiteLimiter:
        limiter = SiteLimiter(3)
        active = 0
        worst = 0

        async def work() -> None:
            nonlocal active, worst
            async with limiter.slot():
                active += 1
                worst = max(worst, active)
                await asyncio.sleep(0.01)
                active -= 1

        await asyncio.gather(*(work() for _ in range(20)))
        assert worst == 3
        return limiter

    limiter = asyncio.run(scenario())
    assert limiter.peak == 3
    assert limiter.in_flight == 0


def test_limiter_refuses_zero() -> None:
    with pytest.raises(ConfigurationError):
        SiteLimiter(0)


def test_registry_shares_one_limiter_per_site_and_loop() -> None:
    registry = SiteLimiterRegistry()

    async def grab() -> tuple[SiteLimiter, SiteLimiter, SiteLimiter]:
        first = registry.get("https://a.example/wiki", 4)
        again = registry.get("https://a.example/wiki", 16)  # the first setting wins
        other = registry.get("https://b.example/wiki", 2)
        return first, again, other

    first, again, other = asyncio.run(grab())
    assert first is again and first.limit == 4
    assert other is not first and other.limit == 2
    # a new event loop gets fresh limiters (asyncio primitives belong to one loop)
    later, _, _ = asyncio.run(grab())
    assert later is not first
