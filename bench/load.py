"""Load: concurrent search clients against a live server while a sync runs.

    .venv/bin/python bench/load.py                        # 50 clients, 30 s, 150 pages, MiniLM
    .venv/bin/python bench/load.py --clients 50 --seconds 30 --pages 150 --edits 10 --trash 30

What runs, all real:

- the Confluence emulator on 127.0.0.1 (in this process, a thread) with ``--pages`` pages;
- ``confluence-rag serve`` in its own process on a fresh SQLite data dir, with the default local
  model (all-MiniLM-L6-v2), which first crawls the space through ``POST /api/confluence/sources``;
- then ``--trash`` pages are trashed and ``--edits`` pages edited in Confluence (a word added
  to every paragraph, so most of their chunks are embedded again), a sync is
  started (``POST /api/confluence/sources/{id}/sync``) and, at the same moment, ``--clients``
  concurrent clients send ``POST /api/search`` (hybrid, limit 10) back to back for
  ``--seconds``. Queries are the code-block marker phrases of random pages, trashed ones among
  them, so a trashed page that is still indexed would come first.

Reported: requests, errors (any non-200 or transport error; must be 0), client-side latency
p50 / p90 / p99 / max, throughput, how long the sync ran inside the window, and "deleted pages
returned": hits on a trashed page among searches *sent after* the sync completed (before that
the page is legitimately still indexed), plus one search per trashed page's phrase once the sync
is done. Exit status 1 if errors or deleted hits are not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.reliability.live_server import ServeProcess  # noqa: E402

from confluence_rag.emulator import (  # noqa: E402
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    EmulatorConfig,
    EmulatorServer,
)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    after_sync: int = 0
    final_checks: int = 0
    deleted_hits: list[str] = field(default_factory=list)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_job(
    client: httpx.AsyncClient, progress_id: str, timeout: float
) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, object] = (await client.get(f"/api/progress/{progress_id}")).json()
        if job["status"] not in ("queued", "running"):
            return job
        if time.monotonic() > deadline:
            raise SystemExit(f"job {progress_id} did not finish in {timeout:.0f} s: {job}")
        await asyncio.sleep(0.5)


async def search_client(
    client: httpx.AsyncClient,
    queries: list[str],
    doomed_keys: set[str],
    stop_at: float,
    sync_done: list[float],
    tally: Tally,
    rng: random.Random,
) -> None:
    while time.monotonic() < stop_at:
        query = rng.choice(queries)
        sent = time.monotonic()
        try:
            response = await client.post("/api/search", json={"query": query, "limit": 10})
        except httpx.HTTPError as error:
            tally.errors.append(f"{type(error).__name__}: {error}")
            continue
        tally.latencies.append(time.monotonic() - sent)
        if response.status_code != 200:
            tally.errors.append(f"{response.status_code}: {response.text[:200]}")
            continue
        if sync_done and sent > sync_done[0]:
            tally.after_sync += 1
            for hit in response.json()["results"]:
                if hit["page_id"] in doomed_keys:
                    tally.deleted_hits.append(hit["page_id"])


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    # Kept after the run (the path is printed): the server log and the index are worth a look.
    root = Path(tempfile.mkdtemp(prefix="load-bench-"))
    print(f"data dir and server log: {root}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFLUENCE_RAG_")}
    env.update({"CONFLUENCE_RAG_DATA_DIR": str(root / "data"), "HF_HUB_OFFLINE": "1"})
    config = EmulatorConfig(flavour="cloud", pages=args.pages, extra_spaces={}, seed=args.seed)
    with EmulatorServer(config) as emulator:
        serve = ServeProcess(env, root / "serve.log").start()
        limits = httpx.Limits(max_connections=args.clients + 5)
        try:
            async with httpx.AsyncClient(base_url=serve.url, timeout=60, limits=limits) as client:
                started = time.monotonic()
                added = await client.post(
                    "/api/confluence/sources",
                    json={
                        "confluence_url": emulator.site_url,
                        "flavour": "cloud",
                        "user_email": DEMO_EMAIL,
                        "api_token": DEMO_API_TOKEN,
                        "space_key": "DEMO",
                    },
                )
                added.raise_for_status()
                source_id = added.json()["source_id"]
                crawl = await wait_job(client, added.json()["progress_id"], 3600)
                if crawl["status"] != "completed":
                    raise SystemExit(f"the crawl did not complete: {crawl}")
                counters = crawl["counters"]
                print(
                    f"crawl: {counters['pages_processed']} pages, "  # type: ignore[index]
                    f"{counters['chunks_embedded']} chunks in "  # type: ignore[index]
                    f"{time.monotonic() - started:.0f} s"
                )

                markers = emulator.state.markers("DEMO")
                page_ids = sorted(markers)
                rng.shuffle(page_ids)
                doomed = page_ids[: args.trash]
                edited = page_ids[args.trash : args.trash + args.edits]
                for page_id in doomed:
                    emulator.state.trash(page_id)
                for n, page_id in enumerate(edited):
                    # A word in every paragraph: most of the page's chunks change and are
                    # embedded again, so the sync does real work while the clients search.
                    body = emulator.state.content(page_id).body
                    emulator.state.edit_page(page_id, body=body.replace("</p>", f" amber{n}</p>"))
                doomed_keys = {f"{source_id}:{page_id}" for page_id in doomed}
                queries = [markers[p] for p in page_ids[: max(200, args.trash * 2)]]

                tally = Tally()
                sync_done: list[float] = []
                sync = await client.post(f"/api/confluence/sources/{source_id}/sync")
                sync.raise_for_status()
                window_start = time.monotonic()
                stop_at = window_start + args.seconds

                async def watch_sync() -> dict[str, object]:
                    job = await wait_job(client, sync.json()["progress_id"], 3600)
                    sync_done.append(time.monotonic())
                    return job

                watcher = asyncio.create_task(watch_sync())
                await asyncio.gather(
                    *(
                        search_client(
                            client,
                            queries,
                            doomed_keys,
                            stop_at,
                            sync_done,
                            tally,
                            random.Random(args.seed * 1000 + n),
                        )
                        for n in range(args.clients)
                    )
                )
                window = time.monotonic() - window_start
                sync_job = await watcher
                # After the sync: every trashed page's own phrase, once, must not find it.
                for page_id in doomed:
                    response = await client.post(
                        "/api/search", json={"query": markers[page_id], "limit": 10}
                    )
                    if response.status_code != 200:
                        tally.errors.append(f"{response.status_code}: {response.text[:200]}")
                        continue
                    tally.final_checks += 1
                    for hit in response.json()["results"]:
                        if hit["page_id"] in doomed_keys:
                            tally.deleted_hits.append(hit["page_id"])
        finally:
            serve.stop()

    lat_ms = [v * 1000 for v in tally.latencies]
    sync_seconds = sync_done[0] - window_start if sync_done else float("nan")
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; load average now {os.getloadavg()[0]:.1f}; server: "
        "confluence-rag serve, SQLite, MiniLM"
    )
    print(f"sync: {sync_job['status']} in {sync_seconds:.1f} s (counters {sync_job['counters']})")
    print(
        f"clients {args.clients}, window {window:.1f} s, requests {len(lat_ms)}, "
        f"throughput {len(lat_ms) / window:.1f}/s, errors {len(tally.errors)}"
    )
    if lat_ms:
        print(
            f"latency ms: p50 {statistics.median(lat_ms):.0f}, p90 {percentile(lat_ms, 0.9):.0f},"
            f" p99 {percentile(lat_ms, 0.99):.0f}, max {max(lat_ms):.0f}"
        )
    print(
        f"searches sent after the sync completed: {tally.after_sync} in the window + "
        f"{tally.final_checks} for the trashed pages' phrases; deleted pages returned: "
        f"{len(tally.deleted_hits)}"
    )
    for error in tally.errors[:5]:
        print("error:", error)
    ok = not tally.errors and not tally.deleted_hits and sync_job["status"] == "completed"
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--pages", type=int, default=150)
    parser.add_argument("--edits", type=int, default=10, help="pages edited before the sync")
    parser.add_argument("--trash", type=int, default=30, help="pages trashed before the sync")
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(run(parser.parse_args())))


if __name__ == "__main__":
    main()
