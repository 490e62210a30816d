"""Through rate limits and failures: every page exactly once, sleeps that honour Retry-After,
bounded retries that end in a clear error, and never a partial listing passed off as complete.

Faults are injected by the emulator over a real socket. Most tests record the retry sleeps
instead of waiting them out (the requests themselves are all real); one test really sleeps.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator

import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.confluence.retry import RetryReason
from confluence_rag.emulator import EmulatorConfig, EmulatorServer, FaultRule, LimitCaps
from confluence_rag.errors import RetryBudgetExhausted
from confluence_rag.settings import Settings
from tests.confluence.conftest import RecordedSleep, auth_for, run, served

SPACE = "DEMO"

# ~31% of requests fail: 1 - (0.91 * 0.93 * 0.94 * 0.94 * 0.95 * 0.97)
MIXED_FAULTS = [
    FaultRule(kind="429", probability=0.09),
    FaultRule(kind="503", probability=0.07),
    FaultRule(kind="500", probability=0.06),
    FaultRule(kind="504", probability=0.06),
    FaultRule(kind="drop", probability=0.05),
    FaultRule(kind="ratelimit403", probability=0.03),
]
RATE_LIMIT_KINDS = ("429", "503", "ratelimit403")


@pytest.fixture(params=["cloud", "datacenter"])
def faulty_site(request: pytest.FixtureRequest) -> Iterator[EmulatorServer]:
    config = EmulatorConfig(flavour=request.param, pages=2600, seed=11, faults=list(MIXED_FAULTS))
    with EmulatorServer(config) as server:
        yield server


def faults_served(server: EmulatorServer) -> Counter[str]:
    return Counter(r.fault for r in server.state.requests if r.fault is not None)


@pytest.mark.slow
def test_thirty_percent_faults_every_page_exactly_once(
    faulty_site: EmulatorServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sleep = RecordedSleep()
    auth = auth_for(faulty_site)

    async def walk() -> tuple[list[str], ConfluenceClient]:
        async with ConfluenceClient(
            faulty_site.site_url, auth, settings=settings, sleep=sleep
        ) as client:
            return [page.id async for page in client.iter_pages(SPACE)], client

    ids, client = run(walk())
    stats = client.stats
    assert len(ids) == len(set(ids)), "a page was listed twice"
    assert set(ids) == faulty_site.state.current_ids(SPACE)

    assert served(faulty_site, "", stats.requests) == stats.requests
    fired = faults_served(faulty_site)
    assert sum(fired.values()) / stats.requests > 0.2, "the fault mix did not bite"
    # every fault the server injected was seen and retried for what it was
    assert stats.retries[RetryReason.RATE_LIMITED.value] == fired["429"]
    assert stats.retries[RetryReason.UNAVAILABLE.value] == fired["503"]
    assert stats.retries[RetryReason.RATE_LIMITED_403.value] == fired["ratelimit403"]
    assert stats.retries[RetryReason.SERVER_ERROR.value] == fired["500"]
    assert stats.retries[RetryReason.GATEWAY_TIMEOUT.value] == fired["504"]
    dropped = stats.retries[RetryReason.DROPPED.value] + stats.retries[RetryReason.MALFORMED.value]
    assert dropped == fired["drop"]
    assert stats.total_retries == sum(fired.values())

    # total sleep respects Retry-After: every rate limit said "1" (s), and was waited out
    rate_limited = sum(fired[kind] for kind in RATE_LIMIT_KINDS)
    assert rate_limited > 0
    assert stats.retry_after_seconds == pytest.approx(rate_limited * 1.0)
    assert sleep.total == pytest.approx(stats.sleep_seconds)
    assert sleep.total >= stats.retry_after_seconds
    assert sum(1 for delay in sleep.calls if delay >= 1.0) >= rate_limited

    # a 504 halved the page size at least once, and the walk carried on from the same place
    if fired["504"]:
        assert stats.limit_reductions >= 1

    # every retry was logged with its reason, and no secret was ever logged
    retry_lines = [r.getMessage() for r in caplog.records if "retrying GET" in r.getMessage()]
    assert len(retry_lines) == stats.total_retries
    assert all(any(reason.value in line for reason in RetryReason) for line in retry_lines)
    for secret in auth.secrets():
        assert secret not in caplog.text


def test_gateway_timeouts_on_heavy_pages_halve_the_limit(
    emulator_factory: object, settings: Settings
) -> None:
    # Budget mode: the gateway times out whenever a body-expanded page asks for more than 20.
    server = emulator_factory(  # type: ignore[operator]
        "datacenter", pages=400, timeout_budget=20, faults=[FaultRule(kind="504")]
    )
    sleep = RecordedSleep()

    async def walk() -> tuple[list[str], ConfluenceClient]:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=settings, sleep=sleep
        ) as client:
            return [page.id async for page in client.iter_pages(SPACE)], client

    ids, client = run(walk())
    assert sorted(ids) == sorted(server.state.current_ids(SPACE))
    assert len(ids) == len(set(ids))
    # 50 (the DC body cap) -> 25 -> 12, then probing back up now and then
    assert client.stats.limit_reductions >= 2
    assert client.stats.retries[RetryReason.GATEWAY_TIMEOUT.value] == faults_served(server)["504"]
    assert sleep.calls == []  # a lighter page needs no waiting
    sent_limits = {r.query for r in server.state.requests if r.status == 200}
    assert any("limit=12" in query for query in sent_limits)


def test_a_short_retry_after_is_really_slept(emulator_factory: object, settings: Settings) -> None:
    server = emulator_factory("cloud", pages=30)  # type: ignore[operator]
    server.state.add_fault(FaultRule(kind="429", times=1, retry_after=1))

    async def walk() -> tuple[int, ConfluenceClient]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as client:
            return len([page async for page in client.iter_pages(SPACE)]), client

    started = time.monotonic()
    count, client = run(walk())
    elapsed = time.monotonic() - started
    assert count == len(server.state.current_ids(SPACE))
    assert elapsed >= 1.0
    assert 1.0 <= client.stats.sleep_seconds <= 1.1
    assert client.stats.retries[RetryReason.RATE_LIMITED.value] == 1


def test_retry_after_as_http_date(emulator_factory: object, settings: Settings) -> None:
    server = emulator_factory("datacenter", pages=30)  # type: ignore[operator]
    server.state.add_fault(FaultRule(kind="503", times=2, retry_after=3, retry_after_date=True))
    sleep = RecordedSleep()

    async def walk() -> int:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=settings, sleep=sleep
        ) as client:
            return len([page async for page in client.iter_pages(SPACE)])

    assert run(walk()) == len(server.state.current_ids(SPACE))
    # "now + 3 s" as an HTTP date (whole seconds): 2-3 s, plus at most 10% jitter
    assert len(sleep.calls) == 2
    assert all(2.0 <= delay <= 3.3 for delay in sleep.calls)


def test_retry_after_is_clamped(emulator_factory: object, settings: Settings) -> None:
    server = emulator_factory("cloud", pages=10)  # type: ignore[operator]
    server.state.add_fault(FaultRule(kind="429", times=1, retry_after=3600))
    server.state.add_fault(FaultRule(kind="503", times=1, retry_after=0))
    sleep = RecordedSleep()
    clamped = settings.model_copy(update={"retry_after_max_seconds": 5.0})

    async def walk() -> None:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=clamped, sleep=sleep
        ) as client:
            await client.check_access(SPACE)

    run(walk())
    assert len(sleep.calls) == 2
    assert 5.0 <= sleep.calls[0] <= 5.5  # an hour asked, 5 s (the setting) waited
    assert 1.0 <= sleep.calls[1] <= 1.1  # 0 asked, the 1 s floor waited: no hot loop


def test_spent_budget_is_a_clear_error(emulator_factory: object, settings: Settings) -> None:
    server = emulator_factory("cloud", pages=10)  # type: ignore[operator]
    server.state.add_fault(FaultRule(kind="503", retry_after=1))
    sleep = RecordedSleep()
    few = settings.model_copy(update={"max_retries": 3})

    async def walk() -> ConfluenceClient:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=few, sleep=sleep
        ) as client:
            with pytest.raises(RetryBudgetExhausted) as caught:
                [page async for page in client.iter_pages(SPACE)]
            assert server.api_base in caught.value.message
            assert "503" in caught.value.message and "3 retries" in caught.value.message
            return client

    client = run(walk())
    assert client.stats.requests == 4  # the first try and three retries, then it stopped
    assert len(sleep.calls) == 3


@pytest.mark.parametrize("flavour", ["cloud", "datacenter"])
def test_a_listing_that_fails_part_way_is_never_complete(
    emulator_factory: object, settings: Settings, flavour: str
) -> None:
    server = emulator_factory(flavour, pages=1000)  # type: ignore[operator]
    server.state.set_limit_caps(LimitCaps.uniform(100))
    # the first three pages come through, then the server breaks for good
    server.state.add_fault(FaultRule(kind="500", after=3, path="/content/search"))
    few = settings.model_copy(update={"max_retries": 2})

    async def listing() -> object:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=few, sleep=RecordedSleep()
        ) as client:
            return await client.iter_page_ids(SPACE)

    result = run(listing())
    assert result.complete is False  # type: ignore[attr-defined]
    assert len(result.refs) == 300  # type: ignore[attr-defined]
    assert "500" in result.error  # type: ignore[attr-defined]


def test_a_slow_response_times_out_and_is_retried(
    emulator_factory: object, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=10)  # type: ignore[operator]
    server.state.gates.add(times=1)  # the first request never gets an answer; the rest do
    sleep = RecordedSleep()
    impatient = settings.model_copy(update={"http_timeout_seconds": 0.5})

    async def walk() -> tuple[int, ConfluenceClient]:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=impatient, sleep=sleep
        ) as client:
            return len([page async for page in client.iter_pages(SPACE)]), client

    count, client = run(walk())
    assert count == len(server.state.current_ids(SPACE))
    assert client.stats.retries[RetryReason.TIMEOUT.value] == 1
