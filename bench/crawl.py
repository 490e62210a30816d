"""Crawl benchmark: a full crawl of an emulated space vs the model alone on the same chunks.

    .venv/bin/python bench/crawl.py                      # 4,000 pages, 50 ms latency, MiniLM
    .venv/bin/python bench/crawl.py --pages 500 --latency-ms 50
    .venv/bin/python bench/crawl.py --pages 1000 --crawl-only [--stub-model]   # memory only

The emulator runs in its own process (so its memory is not counted), the crawl runs here through
``build_services`` exactly as the CLI and API run it, with the default local model. Every text
the crawl sends to the model is recorded; afterwards the model embeds those same texts alone, in
batches of the embedder's size. Targets (issue #6): crawl time <= 1.2 x model-alone time, and
peak RSS of this process <= 1 GB.
"""

from __future__ import annotations

import _sqlite3
import argparse
import asyncio
import ctypes
import json
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.emulated_site import emulated_site  # noqa: E402

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.index.local_embedder import LocalEmbedder
from confluence_rag.ingest.sources import NewSource
from confluence_rag.services import build_services
from confluence_rag.settings import Settings


class RecordingEmbedder:
    """The real embedder, plus a record of every text the crawl asked it to embed.

    The record goes to a file, one JSON string per line: held in memory, 4,000 pages' texts
    would add tens of MB to the RSS being measured.
    """

    def __init__(self, inner: Embedder, record: Path) -> None:
        self.inner = inner
        self.record = record
        self._file = record.open("w", encoding="utf-8")
        self.count = 0
        self.busy_seconds = 0.0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def texts(self) -> list[str]:
        self._file.close()
        with self.record.open(encoding="utf-8") as lines:
            return [json.loads(line) for line in lines]

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        self._file.writelines(json.dumps(text) + "\n" for text in texts)
        self.count += len(texts)
        started = time.perf_counter()
        try:
            return await self.inner.embed_documents(texts)
        finally:
            self.busy_seconds += time.perf_counter() - started


class StubModel(LocalEmbedder):
    """``--stub-model``: the real tokenizer (so chunks are the same), random vectors, no torch:
    what the crawl machinery costs in memory without the model."""

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        await asyncio.sleep(0.02)
        rng = np.random.default_rng(len(texts))
        return rng.standard_normal((len(texts), self.dimension)).astype(np.float32)


class RssSampler:
    """Peak resident memory of this process, sampled from /proc while the crawl runs, and
    how much of it SQLite's own allocator held at its peak (page caches, statements)."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self.sqlite_peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._sqlite_used = _sqlite_memory_used()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_kb = max(self.peak_kb, _rss_kb())
            self.sqlite_peak_kb = max(self.sqlite_peak_kb, self._sqlite_used() // 1024)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, _rss_kb())


def _sqlite_memory_used() -> Callable[[], int]:
    """``sqlite3_memory_used()`` of the SQLite library this Python links."""
    library = ctypes.CDLL(_sqlite3.__file__)
    function = library.sqlite3_memory_used
    function.restype = ctypes.c_int64
    return lambda: int(function())


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def run(args: argparse.Namespace) -> None:
    config = {"flavour": args.flavour, "pages": args.pages, "latency_ms": args.latency_ms}
    with (
        emulated_site(**config, extra_spaces={}) as site_url,
        tempfile.TemporaryDirectory(prefix="crawl-bench-") as tmp,
    ):
        await crawl(args, site_url, Path(tmp))


async def crawl(args: argparse.Namespace, site_url: str, data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    model = StubModel(settings) if args.stub_model else create_embedder(settings)
    started = time.perf_counter()
    await model.embed_documents(["warm up the model"])
    print(f"model {model.model_id} loaded in {time.perf_counter() - started:.1f} s")
    rss_loaded = _rss_kb()
    recorder = RecordingEmbedder(model, data_dir / "embedded-texts.jsonl")
    cloud = args.flavour == "cloud"
    new = NewSource(
        confluence_url=site_url,
        flavour=args.flavour,
        user_email=DEMO_EMAIL if cloud else None,
        api_token=DEMO_API_TOKEN if cloud else DEMO_PAT,
        space_key="DEMO",
    )
    with RssSampler() as rss:
        async with build_services(settings, embedder=recorder) as services:
            source, _ = await services.sources.add(new, start=False)
            services.jobs.start()
            t0 = time.perf_counter()
            job = await services.jobs.submit(source.id)
            job = await services.jobs.wait(job.id)
            crawl_seconds = time.perf_counter() - t0
    if job.status != "completed":
        raise SystemExit(f"crawl {job.status}: {job.error}")
    counters = job.counters
    pages = counters.get("pages_processed", 0)
    print(f"crawl: {counters}")
    print()
    print(f"pages listed / stored    {counters.get('pages_listed', 0)} / {pages}")
    print(f"chunks embedded          {recorder.count}")
    print(f"crawl total              {crawl_seconds:.1f} s")
    print(f"model busy during crawl  {recorder.busy_seconds:.1f} s")
    print(f"pages/s                  {pages / crawl_seconds:.1f}")
    print(f"chunks/s                 {recorder.count / crawl_seconds:.1f}")
    print(f"RSS with model loaded    {rss_loaded / 1024:.0f} MB (before the crawl)")
    print(f"peak RSS during crawl    {rss.peak_kb / 1024:.0f} MB  (target <= 1024; sampled)")
    print(f"  SQLite's own peak      {rss.sqlite_peak_kb / 1024:.0f} MB (page caches, statements)")
    if args.crawl_only:
        return

    # The model alone on the very same texts, batch by batch.
    texts = recorder.texts()
    batch = model.batch_size
    t0 = time.perf_counter()
    for start in range(0, len(texts), batch):
        await model.embed_documents(texts[start : start + batch])
    model_seconds = time.perf_counter() - t0
    await model.aclose()
    print(f"model alone, same chunks {model_seconds:.1f} s")
    print(f"ratio                    {crawl_seconds / model_seconds:.2f} x  (target <= 1.2)")
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"peak RSS (ru_maxrss)     {maxrss / 1024:.0f} MB (whole process, model-alone run too)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument(
        "--crawl-only", action="store_true", help="skip the model-alone run (memory figures only)"
    )
    parser.add_argument(
        "--stub-model", action="store_true", help="random vectors instead of the model (memory)"
    )
    parser.add_argument("--flavour", choices=("cloud", "datacenter"), default="cloud")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
