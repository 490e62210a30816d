"""Chaos crawl, full scale: a space where ~30% of requests meet a fault, crawled to the end.

    .venv/bin/python bench/chaos.py                      # 1,000 pages, 30% faults, fake embedder
    .venv/bin/python bench/chaos.py --pages 1000 --rate 0.3 --baseline
    .venv/bin/python bench/chaos.py --embedder local     # the real MiniLM (slower: ~13k chunks)

The faults are the issue's mix (``tests/reliability/crawl_audit.chaos_faults``): 429 and 503 with
``Retry-After`` (``--retry-after`` s, honoured as sent), 500, 504, connections dropped half-way
through a response, and ``--spike-ms`` latency spikes, with probabilities that add up to
``--rate`` per request. Unlike the test (``tests/reliability/test_chaos_crawl.py``), the
emulator keeps Confluence Cloud's default ``limit`` caps, so the crawl makes as few requests as a
real one would. The crawl runs in this process through ``build_services`` as the CLI runs it.

Reported: wall time (and a fault-free baseline with ``--baseline``), requests and how many
failed, faults fired per kind, the job's counters, and the audit of the SQLite file against the
emulator: eligible pages stored, lost, duplicated (pages or chunk ordinals), FTS rows vs chunks,
integrity check. Exit status 1 unless every eligible page is stored exactly once.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.ingest.fake_embeddings import FakeEmbeddingServer  # noqa: E402
from tests.reliability.crawl_audit import (  # noqa: E402
    CrawlOutcome,
    audit_sqlite,
    chaos_faults,
    crawl_once,
    eligible_ids,
    fault_counts,
)

from confluence_rag.emulator import EmulatorConfig, EmulatorServer  # noqa: E402
from confluence_rag.settings import Settings  # noqa: E402


def crawl(args: argparse.Namespace, rate: float) -> int:
    faults = (
        chaos_faults(rate, retry_after=args.retry_after, spike_ms=args.spike_ms) if rate else []
    )
    config = EmulatorConfig(
        flavour=args.flavour, pages=args.pages, seed=args.seed, extra_spaces={}, faults=faults
    )
    with EmulatorServer(config) as server, tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            max_retries=args.max_retries,
            retry_after_max_seconds=max(60.0, args.retry_after),
        )
        expected = eligible_ids(server.state, settings)
        outcome: CrawlOutcome = asyncio.run(crawl_once(settings, server, timeout=7200))
        requests = list(server.state.requests)
        failed = sum(1 for r in requests if r.fault is not None)
        audit = audit_sqlite(settings.sqlite_path, outcome.source_id)
        stored = set(audit.versions)
        stale = [p for p, v in audit.versions.items() if v != server.state.content(p).version]
        label = f"{rate:.0%} faults" if rate else "baseline (no faults)"
        print(f"\n== {label}: {args.pages} pages, {args.flavour}, embedder {args.embedder}")
        print(f"job {outcome.job.status} in {outcome.seconds:.1f} s; error: {outcome.job.error}")
        fired = fault_counts(server.state)
        spikes = fired.get("latency", 0)
        print(
            f"requests {len(requests)}: failed by a fault {failed} ({failed / len(requests):.0%}),"
            f" delayed by a spike {spikes}, hit by either {(failed + spikes) / len(requests):.0%}"
        )
        print(f"faults fired: {fired}")
        print(f"counters: {outcome.job.counters}")
        print(
            f"eligible {len(expected)}, stored {len(stored)}, lost {len(expected - stored)}, "
            f"unexpected {len(stored - expected)}, stale versions {len(stale)}, page rows "
            f"{audit.page_rows}"
        )
        print(f"audit: {audit.problems()}")
        ok = (
            outcome.job.status == "completed"
            and audit.clean
            and stored == expected
            and audit.page_rows == len(expected)
            and not stale
        )
        print("RESULT:", "every eligible page stored exactly once" if ok else "FAILED")
        return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=0.30, help="share of requests hit")
    parser.add_argument("--spike-ms", type=float, default=2000.0)
    parser.add_argument("--retry-after", type=int, default=1)
    parser.add_argument("--max-retries", type=int, default=8)
    parser.add_argument("--flavour", choices=("cloud", "datacenter"), default="cloud")
    parser.add_argument("--embedder", choices=("fake", "local"), default="fake")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--baseline", action="store_true", help="also crawl with no faults")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in [n for n in os.environ if n.startswith("CONFLUENCE_RAG_")]:
        del os.environ[name]
    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}"
    )
    status = 0
    if args.embedder == "fake":
        with FakeEmbeddingServer(dimension=384) as embeddings:
            os.environ.update(embeddings.settings_env())
            if args.baseline:
                status |= crawl(args, 0.0)
            status |= crawl(args, args.rate)
    else:
        os.environ["CONFLUENCE_RAG_EMBEDDER"] = "local"
        if args.baseline:
            status |= crawl(args, 0.0)
        status |= crawl(args, args.rate)
    sys.exit(status)


if __name__ == "__main__":
    main()
