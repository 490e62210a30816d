"""Peak memory and throughput of the local model per batch size, one fresh process each.

    .venv/bin/python bench/embed_memory.py            # batch sizes 8, 16, 32, twice each

``ru_maxrss`` only ever grows, so each batch size runs in its own process: the figure is the
peak while embedding 512 texts of 110-190 words (at or near the model's 256-token limit, as
crawl chunks are), against the RSS with the model loaded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


async def measure(batch_size: int) -> None:
    from confluence_rag.index.embedders import create_embedder
    from confluence_rag.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        model = create_embedder(Settings(data_dir=Path(data_dir), embed_batch_size=batch_size))
        await model.embed_documents(["warm up"])
        loaded = _rss_mb()
        rng = random.Random(1)
        words = [f"word{i}" for i in range(5000)]
        texts = [" ".join(rng.choices(words, k=rng.randint(110, 190))) for _ in range(512)]
        started = time.perf_counter()
        for start in range(0, len(texts), batch_size):
            await model.embed_documents(texts[start : start + batch_size])
        rate = len(texts) / (time.perf_counter() - started)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"batch {batch_size:>3}: {rate:5.1f} texts/s, loaded {loaded} MB, peak {peak} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="8,16,32")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        asyncio.run(measure(args.one))
        return
    for _ in range(args.runs):
        for size in args.batch_sizes.split(","):
            subprocess.run([sys.executable, __file__, "--one", size], check=True)


if __name__ == "__main__":
    main()
