"""How fast the Confluence client lists a space with bodies, at one and at several requests in
flight per site.

    .venv/bin/python -m bench.client [--pages 4000] [--latency-ms 50] [--repeats 3]
                                     [--flavour datacenter --flavour cloud]

The emulator runs in a child process (so its JSON rendering does not compete with the client
for this process's GIL) and adds ``--latency-ms`` to every response, like a real site far away.
Each figure is the median of ``--repeats`` full listings; every listing is checked to return
each current page of the space exactly once.

Two strategies, each at concurrency 1 and at the default ``max_concurrent_requests_per_site``:

- ``walk``: ``iter_pages`` - one CQL search followed through ``_links.next``. The walk is
  sequential by nature (each next link comes from the previous response; Cloud's are opaque
  cursors), so more concurrency cannot speed it up; the client's one-page prefetch overlaps
  fetching with the caller's work instead (invisible here, where the caller does nothing).
- ``ids+fetch``: ``iter_page_ids`` (ids and versions only, large pages) then ``fetch_pages``
  (bodies by ``id in (...)`` batches of the flavour's body cap, several batches in flight).
  This is where concurrency pays, and it is what a sync does anyway: the id listing is needed
  for deletions, and only new or changed ids need their bodies fetched.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection

from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    EmulatorConfig,
    EmulatorServer,
)
from confluence_rag.settings import Settings

SPACE = "DEMO"


def serve(config: EmulatorConfig, pipe: Connection) -> None:
    """Child process: run the emulator, report its URL and expected ids, wait for "stop"."""
    with EmulatorServer(config) as server:
        pipe.send((server.site_url, sorted(server.state.current_ids(SPACE))))
        pipe.recv()


def auth_for(flavour: str) -> SiteAuth:
    if flavour == "cloud":
        return SiteAuth.cloud(DEMO_EMAIL, DEMO_API_TOKEN)
    return SiteAuth.datacenter(DEMO_PAT)


async def walk(client: ConfluenceClient, batch: int) -> list[str]:
    return [page.id async for page in client.iter_pages(SPACE, include_body=True)]


async def ids_then_fetch(client: ConfluenceClient, batch: int) -> list[str]:
    listing = await client.iter_page_ids(SPACE)
    if not listing.complete:
        raise SystemExit(f"id listing incomplete: {listing.error}")
    return [page.id async for page in client.fetch_pages(listing.refs, batch_size=batch)]


Strategy = Callable[[ConfluenceClient, int], Awaitable[list[str]]]


def measure(
    site_url: str,
    flavour: str,
    expected: list[str],
    strategy: Strategy,
    concurrency: int,
    batch: int,
    repeats: int,
) -> tuple[float, float, int]:
    """(median pages/s, median seconds, requests per listing)."""
    settings = Settings(max_concurrent_requests_per_site=concurrency)
    seconds: list[float] = []
    requests = 0

    async def once() -> None:
        nonlocal requests
        # a fresh client (and event loop, hence limiter) per run: no warm state carried over
        async with ConfluenceClient(site_url, auth_for(flavour), settings=settings) as client:
            started = time.perf_counter()
            ids = await strategy(client, batch)
            seconds.append(time.perf_counter() - started)
            requests = client.stats.requests
            if len(ids) != len(set(ids)) or sorted(ids) != expected:
                raise SystemExit(f"{strategy.__name__}: listing was not every page exactly once")

    for _ in range(repeats):
        asyncio.run(once())
    median = statistics.median(seconds)
    return len(expected) / median, median, requests


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--flavour", action="append", choices=["datacenter", "cloud"], dest="flavours"
    )
    args = parser.parse_args()
    default = Settings().max_concurrent_requests_per_site
    strategies: list[tuple[str, Strategy]] = [("walk", walk), ("ids+fetch", ids_then_fetch)]

    print(
        f"Client listing {args.pages} pages with bodies, emulator latency {args.latency_ms:g} ms, "
        f"median of {args.repeats}\n"
    )
    print("| flavour (body cap) | strategy | concurrency | pages/s | seconds | requests |")
    print("|---|---|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    for flavour in args.flavours or ["datacenter", "cloud"]:
        config = EmulatorConfig(
            flavour=flavour, pages=args.pages, seed=args.seed, latency_ms=args.latency_ms
        )
        batch = config.limit_caps.body
        parent, child = context.Pipe()
        process = context.Process(target=serve, args=(config, child), daemon=True)
        process.start()
        try:
            site_url, expected = parent.recv()
            for name, strategy in strategies:
                for concurrency in (1, default):
                    rate, seconds, requests = measure(
                        site_url, flavour, expected, strategy, concurrency, batch, args.repeats
                    )
                    print(
                        f"| {flavour} ({batch}) | {name} | {concurrency} | **{rate:,.0f}** | "
                        f"{seconds:.2f} | {requests} |",
                        flush=True,
                    )
        finally:
            parent.send("stop")
            process.join(timeout=30)


if __name__ == "__main__":
    main()
