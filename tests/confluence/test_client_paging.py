"""Pagination against misbehaving servers, the shared per-site limit, and early exits.

Buggy Data Center offsets are produced by a transport that wraps the real socket transport to
the emulator and rewrites ``_links.next`` the way affected versions do; everything else is
the emulator as is.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from contextlib import aclosing

import httpx
import pytest

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.confluence.paging import int_param, with_params
from confluence_rag.emulator import EmulatorServer, LimitCaps
from confluence_rag.errors import UnexpectedResponse
from confluence_rag.settings import Settings
from tests.confluence.conftest import auth_for, run

Factory = Callable[..., EmulatorServer]


class NextLinkRewriter(httpx.AsyncBaseTransport):
    """The real HTTP transport, with each search response's ``_links.next`` passed through
    ``rewrite(next_link, sent_url)``: a stand-in for server bugs the emulator does not have."""

    def __init__(self, rewrite: Callable[[str, str], str]) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.rewrite = rewrite
        self.rewritten = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if "/content/search" not in request.url.path or response.status_code != 200:
            return response
        body = await response.aread()
        await response.aclose()
        data = json.loads(body)
        next_link = data["_links"].get("next")
        if next_link:
            data["_links"]["next"] = self.rewrite(next_link, str(request.url))
            self.rewritten += 1
        headers = [
            (name, value)
            for name, value in response.headers.items()
            if name.lower() not in ("content-length", "content-encoding")
        ]
        return httpx.Response(
            response.status_code, headers=headers, content=json.dumps(data).encode()
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


def start_jumps_ahead(next_link: str, sent_url: str) -> str:
    """The bug that skips: next start = sent start + the limit first asked for (1000), not
    the number of results served (50)."""
    return with_params(next_link, start=(int_param(sent_url, "start") or 0) + 1000)


def start_unchanged(next_link: str, sent_url: str) -> str:
    """The bug that re-reads: next start = the same start again."""
    return with_params(next_link, start=int_param(sent_url, "start") or 0)


@pytest.mark.parametrize("bug", [start_jumps_ahead, start_unchanged])
def test_wrong_datacenter_offsets_are_corrected(
    emulator_factory: Factory, settings: Settings, bug: Callable[[str, str], str]
) -> None:
    server = emulator_factory("datacenter", pages=600)
    server.state.set_limit_caps(LimitCaps.uniform(50))
    transport = NextLinkRewriter(bug)

    async def walk() -> tuple[list[str], ConfluenceClient]:
        async with ConfluenceClient(
            server.site_url, auth_for(server), settings=settings, transport=transport
        ) as client:
            ids = [page.id async for page in client.iter_pages("DEMO", limit=1000)]
            return ids, client

    ids, client = run(walk())
    expected = server.state.current_ids("DEMO")
    assert len(ids) == len(set(ids)) and set(ids) == expected
    assert transport.rewritten > 5
    assert client.stats.offset_corrections == transport.rewritten
    assert client.stats.requests == -(-len(expected) // 50)  # no page fetched twice


def test_a_server_that_repeats_itself_is_stopped_not_looped(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=200)
    server.state.set_limit_caps(LimitCaps.uniform(25))
    first_next: list[str] = []

    def stuck_cursor(next_link: str, sent_url: str) -> str:
        if not first_next:
            first_next.append(next_link)
        return first_next[0]  # the same cursor forever

    async def listing() -> object:
        async with ConfluenceClient(
            server.site_url,
            auth_for(server),
            settings=settings,
            transport=NextLinkRewriter(stuck_cursor),
        ) as client:
            with pytest.raises(UnexpectedResponse, match="not advancing"):
                [page async for page in client.iter_pages("DEMO")]
            return await client.iter_page_ids("DEMO", limit=25)

    result = run(listing())
    assert result.complete is False  # type: ignore[attr-defined]
    assert "not advancing" in result.error  # type: ignore[attr-defined]
    assert len(result.refs) == 50  # type: ignore[attr-defined]


def test_all_clients_of_a_site_share_one_limit(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("datacenter", pages=400)
    ids = sorted(server.state.current_ids("DEMO"))
    two = settings.model_copy(update={"max_concurrent_requests_per_site": 2})
    # The first requests wait until two are in flight: the peak provably reaches the limit
    # (and, were the limit not shared, would show the four the two clients want).
    gate = server.state.gates.add(path="/content/search")

    async def crawl_twice() -> tuple[int, int, bool]:
        auth = auth_for(server)
        async with (
            ConfluenceClient(server.site_url, auth, settings=two) as first,
            ConfluenceClient(server.site_url + "/", auth, settings=two) as second,
        ):

            async def fetch(client: ConfluenceClient, chunk: list[str]) -> int:
                return len([page async for page in client.fetch_pages(chunk, batch_size=10)])

            async def open_at_two() -> int:
                await gate.held_async(2)
                gate.release()
                return 0

            counts = await asyncio.gather(
                fetch(first, ids[:200]), fetch(second, ids[200:]), open_at_two()
            )
            return sum(counts), first.limiter.peak, first.limiter is second.limiter

    total, peak, shared = run(crawl_twice())
    assert total == len(ids)
    assert shared
    assert peak == 2  # two crawls, each wanting 2 at once, still 2 in flight in all


def test_leaving_a_listing_early_cancels_the_prefetch(
    emulator_factory: Factory, settings: Settings
) -> None:
    server = emulator_factory("cloud", pages=200)
    # Every listing after the first waits: the prefetch of the next page is provably in flight
    # (held) when the caller leaves, and must be cancelled, not left running.
    gate = server.state.gates.add(path="/content/search", after=1)

    async def first_few() -> tuple[int, int, int]:
        async with ConfluenceClient(server.site_url, auth_for(server), settings=settings) as c:
            taken = 0
            async with aclosing(c.iter_pages("DEMO")) as pages:
                async for _page in pages:
                    taken += 1
                    if taken == 1:
                        await gate.held_async(1)
                    if taken == 3:
                        break
            others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            return taken, len(others), c.limiter.in_flight

    assert run(first_few()) == (3, 0, 0)
