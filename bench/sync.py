"""Sync benchmark: full crawl of an emulated space, change 1% and delete 0.5%, then sync.

    .venv/bin/python bench/sync.py                      # 4,000 pages, 50 ms latency, MiniLM
    .venv/bin/python bench/sync.py --pages 500 --latency-ms 0
    .venv/bin/python bench/sync.py --embedder hash      # crawl not bounded by the model
    .venv/bin/python bench/sync.py --embedder hash --spaces 8   # one source, 8 spaces

The emulator runs in its own process and the space is changed through its REST write API (PUT a
new version that appends a paragraph; DELETE moves a page to the trash), as a person editing
Confluence would. Crawl and syncs run here through ``build_services`` with the default local
model, exactly as the CLI and API run them. Every text sent to the model is recorded.

"Chunks whose text changed" is computed independently of the sync: the edited pages are fetched
again and chunked with the crawl's own preparer; their chunk hashes that the crawl never embedded
are the changed ones. Targets (issue #7): sync <= 10 s and <= 5% of the full crawl's time;
chunks embedded == chunks whose text changed; a sync with no changes makes no embedding call and
finishes in seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulated_site import emulated_site  # noqa: E402

from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from confluence_rag.index.chunking import content_hash
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.ingest.crawl import CrawlJob
from confluence_rag.ingest.people import UserDirectory
from confluence_rag.ingest.sources import NewSource
from confluence_rag.records import JobRecord
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings


class HashVectors:
    """``--embedder hash``: MiniLM's tokenizer sizes the chunks (same chunks as the real run),
    but vectors come from a hash of the text, so a 4,000-page crawl is not bounded by the model
    on a busy 2-core machine. A faster crawl makes the sync's share of it harder to meet."""

    model_id = "bench-hash-vectors"
    dimension = 384

    def __init__(self, tokenizer: Embedder) -> None:
        self.tokenizer = tokenizer
        self.max_tokens = tokenizer.max_tokens
        self.batch_size = tokenizer.batch_size

    def count_tokens(self, text: str) -> int:
        return self.tokenizer.count_tokens(text)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
            row = np.random.default_rng(seed).standard_normal(self.dimension)
            rows.append(row / np.linalg.norm(row))
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dimension)

    async def embed_query(self, text: str) -> np.ndarray:
        return (await self.embed_documents([text]))[0]

    def close(self) -> None:
        self.tokenizer.close()

    async def aclose(self) -> None:
        await self.tokenizer.aclose()


class RecordingEmbedder:
    """The real embedder, plus a record of every call and text it was asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.texts: list[str] = []
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts.extend(texts)
        return await self.inner.embed_documents(texts)


async def run(args: argparse.Namespace) -> None:
    extra = {f"S{n}": args.pages // args.spaces for n in range(2, args.spaces + 1)}
    pages = args.pages - sum(extra.values())
    with (
        emulated_site(pages=pages, latency_ms=args.latency_ms, extra_spaces=extra) as site_url,
        tempfile.TemporaryDirectory(prefix="sync-bench-") as tmp,
    ):
        await bench(args, site_url, Path(tmp))


class StoreTimer:
    """``--profile``: wall time spent in the store calls and the id listing during a job."""

    NAMES = (
        "page_versions",
        "embeddings_for_hashes",
        "write_page",
        "soft_delete_pages",
        "purge_deleted",
        "get_index_model",
        "ensure_index_model",
    )

    def __init__(self, services: Services) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        for name in self.NAMES:
            setattr(services.store, name, self._timed(name, getattr(services.store, name)))
        original = ConfluenceClient.iter_page_ids
        timer = self

        async def iter_page_ids(client: Any, *a: Any, **k: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(client, *a, **k)
            finally:
                timer._add("iter_page_ids", time.perf_counter() - started)

        ConfluenceClient.iter_page_ids = iter_page_ids  # type: ignore[method-assign,assignment]

    def _timed(self, name: str, method: Any) -> Any:
        async def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await method(*args, **kwargs)
            finally:
                self._add(name, time.perf_counter() - started)

        return call

    def _add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.calls[name] = self.calls.get(name, 0) + 1

    def report(self, label: str) -> None:
        parts = [
            f"{name} {self.seconds[name]:.2f} s/{self.calls[name]}"
            for name in sorted(self.seconds, key=self.seconds.__getitem__, reverse=True)
        ]
        print(f"  {label}: " + ", ".join(parts))
        self.seconds.clear()
        self.calls.clear()


async def timed_job(services: Services, source_id: str, kind: str) -> tuple[JobRecord, float]:
    started = time.perf_counter()
    job = await services.jobs.submit(source_id, kind)
    job = await services.jobs.wait(job.id)
    seconds = time.perf_counter() - started
    if job.status != "completed":
        raise SystemExit(f"{kind} {job.status}: {job.error}")
    return job, seconds


async def change_space(
    site_url: str, stored: Sequence[str], args: argparse.Namespace
) -> tuple[list[str], list[str]]:
    """Edit ``--change`` and trash ``--delete`` of the stored pages through the REST API."""
    rng = random.Random(args.seed)
    picked = rng.sample(sorted(stored), round(len(stored) * (args.change + args.delete)))
    edited = picked[: round(len(stored) * args.change)]
    trashed = picked[len(edited) :]
    api = f"{site_url}/wiki/rest/api/content"
    async with httpx.AsyncClient(auth=(DEMO_EMAIL, DEMO_API_TOKEN), timeout=60) as http:
        for n, page_id in enumerate(edited):
            page = (await http.get(f"{api}/{page_id}?expand=body.storage,version")).json()
            body = page["body"]["storage"]["value"] + f"<p>Sync benchmark edit {n}: reviewed.</p>"
            reply = await http.put(
                f"{api}/{page_id}",
                json={
                    "type": page["type"],
                    "title": page["title"],
                    "version": {"number": page["version"]["number"] + 1},
                    "body": {"storage": {"value": body, "representation": "storage"}},
                },
            )
            reply.raise_for_status()
        for page_id in trashed:
            (await http.delete(f"{api}/{page_id}")).raise_for_status()
    return edited, trashed


async def changed_chunk_hashes(
    services: Services, source_id: str, embedder: Embedder, edited: Sequence[str]
) -> set[str]:
    """Hashes of the edited pages' chunks as they are now, chunked by the crawl's preparer."""
    source = await services.store.get_source(source_id)
    crawl = CrawlJob(services.store, services.sources, lambda: embedder, services.settings)
    hashes: set[str] = set()
    async with services.sources.open_client(source) as client:
        # With the users a page mentions resolved to names, as the crawl and the sync do.
        prepare = crawl.preparer(source, embedder, client.api_base, UserDirectory(client))
        names = dict(source.space_names)
        async for page in client.fetch_pages(list(edited)):
            # In a thread, as the pipeline runs it: name lookups wait on this loop.
            space_name = names.get(page.space_key, page.space_key)
            result = await asyncio.to_thread(prepare, page, space_name)
            if isinstance(result, str):
                continue  # skipped by the rules: never embedded
            hashes.update(chunk.content_hash for chunk in result[1])
    return hashes


async def bench(args: argparse.Namespace, site_url: str, data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    local = create_embedder(settings)
    started = time.perf_counter()
    await local.embed_documents(["warm up the model"])
    print(f"model {local.model_id} loaded in {time.perf_counter() - started:.1f} s")
    model: Embedder = HashVectors(local) if args.embedder == "hash" else local
    print(f"embedding with {model.model_id}")
    recorder = RecordingEmbedder(model)
    new = NewSource(
        confluence_url=site_url,
        flavour="cloud",
        user_email=DEMO_EMAIL,
        api_token=DEMO_API_TOKEN,
        space_keys=["DEMO", *(f"S{n}" for n in range(2, args.spaces + 1))],
    )
    async with build_services(settings, embedder=recorder) as services:
        source, _ = await services.sources.add(new, start=False)
        services.jobs.start()
        crawl_job, crawl_seconds = await timed_job(services, source.id, "crawl")
        crawled_hashes = {content_hash(text) for text in recorder.texts}
        print(f"crawl: {dict(crawl_job.counters)}")
        versions = await services.store.page_versions(source.id)
        live = [page_id for page_id, (_, deleted) in versions.items() if not deleted]

        edited, trashed = await change_space(site_url, live, args)
        now_hashes = await changed_chunk_hashes(services, source.id, model, edited)
        text_changed = len(now_hashes - crawled_hashes)

        timer = StoreTimer(services) if args.profile else None
        calls, texts = recorder.calls, len(recorder.texts)
        sync_job, sync_seconds = await timed_job(services, source.id, "sync")
        if timer is not None:
            timer.report("sync")
        sync_calls, sync_texts = recorder.calls - calls, len(recorder.texts) - texts
        counters = sync_job.counters
        print(f"sync: {dict(counters)}")
        if args.show_log:
            print("\n".join(f"  {line}" for line in sync_job.log))

        calls = recorder.calls
        idle_job, idle_seconds = await timed_job(services, source.id, "sync")
        idle_calls = recorder.calls - calls
        if timer is not None:
            timer.report("no-change sync")
    await model.aclose()

    print()
    print(f"pages stored after crawl       {len(live)}")
    print(f"chunks embedded by the crawl   {crawl_job.counters['chunks_embedded']}")
    print(f"full crawl                     {crawl_seconds:.1f} s")
    print(f"pages edited / trashed         {len(edited)} / {len(trashed)}")
    print(
        f"sync                           {sync_seconds:.2f} s  (target <= 10 s)  "
        f"updated {counters['pages_updated']}, deleted {counters['pages_deleted']}"
    )
    share = 100 * sync_seconds / crawl_seconds
    print(f"sync / full crawl              {share:.2f} %  (target <= 5)")
    print(f"chunks whose text changed      {text_changed}")
    print(
        f"chunks embedded by the sync    {counters['chunks_embedded']} "
        f"({sync_texts} texts in {sync_calls} model calls), reused {counters['chunks_reused']}"
    )
    ok = counters["chunks_embedded"] == text_changed == sync_texts
    print(f"embedded == changed            {'yes' if ok else 'NO'}")
    print(
        f"no-change sync                 {idle_seconds:.2f} s, {idle_calls} embedding calls, "
        f"chunks embedded {idle_job.counters['chunks_embedded']}"
    )
    # From the spaces' summary lines: what the no-change sync still fetched by id (pages the
    # rules skipped, unless their skip was recorded).
    skipped = _summed(idle_job.log, r"(\d+) skipped at that version before")
    fetched = _summed(idle_job.log, r"(\d+) to fetch by id")
    print(
        f"no-change sync's listings      {skipped} skipped at that version before, "
        f"{fetched} to fetch by id"
    )


def _summed(log: Sequence[str], pattern: str) -> int:
    return sum(int(found.group(1)) for line in log if (found := re.search(pattern, line)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--spaces", type=int, default=1, help="Split the pages over this many spaces of the source."
    )
    parser.add_argument("--change", type=float, default=0.01, help="Share of pages edited.")
    parser.add_argument("--delete", type=float, default=0.005, help="Share of pages trashed.")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--show-log", action="store_true", help="Print the sync job's log.")
    parser.add_argument(
        "--profile", action="store_true", help="Time store calls and id listings in syncs."
    )
    parser.add_argument(
        "--embedder",
        choices=("local", "hash"),
        default="local",
        help="local: MiniLM (default); hash: MiniLM's tokenizer, vectors from a hash.",
    )
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
