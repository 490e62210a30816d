"""Hybrid search latency on SQLite at 100k chunks, query embedding included.

    .venv/bin/python bench/search_latency.py                     # 100k chunks, real MiniLM
    .venv/bin/python bench/search_latency.py --chunks 20000 --runs 1 --embedder hash

What it measures, all through the code the product runs (``SQLiteStore`` + ``SearchService``):

1. Builds (once; cached at ``--db``) ``--chunks`` chunks in pages of ``--per-page`` with
   ``write_page``: text is sentences of the SciFact corpus from ``../shared/data/eval`` (real
   English term statistics for FTS5; random words if absent); vectors are SYNTHETIC (384-dim,
   clustered, unit length): embedding 100k chunks with MiniLM would take ~1 hour here, and the
   cost of exact search does not depend on the values.
2. Cold start: the first search loads the in-memory matrix from SQLite.
3. ``SearchService.search(query, limit=10)`` hybrid, end to end, in chunks and in pages mode:
   query embedding with the real all-MiniLM-L6-v2 (``--embedder local``), FTS5 keyword
   candidates and numpy vector candidates, RRF, ranking, fetch of the hits, snippets. Queries
   are SciFact claims (real questions). p50 / p99 over ``--queries`` queries, ``--runs`` runs,
   the median run reported; plus each stage alone (embedding, keyword, vector) so a regression
   can be located.

4. With ``--delete-chunks N`` (e.g. 50000): builds a second source of N chunks in a separate
   database, deletes it with ``delete_source`` while a job heartbeat is written every 10 ms,
   and reports the delete time and the heartbeat's worst wait (how long the writer was held).

Targets (issue #5): p50 <= 20 ms, p99 <= 60 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from confluence_rag.content.models import CodeBlock, Document  # noqa: E402
from confluence_rag.index.models import Chunk  # noqa: E402
from confluence_rag.records import (  # noqa: E402
    SearchFilters,
    SourceRecord,
)
from confluence_rag.search.service import SearchService  # noqa: E402
from confluence_rag.settings import Settings  # noqa: E402
from confluence_rag.store.sqlite import SQLiteStore  # noqa: E402

SOURCE = "bench.atlassian.net:ENG+OPS+SALES+HR"
SPACES = ("ENG", "OPS", "SALES", "HR")
LABELS = ("howto", "runbook", "design", "faq", "archive")
SCIFACT = REPO.parent / "shared" / "data" / "eval" / "scifact"
DIM = 384
WORDS_PER_CHUNK = 150


# --- corpus ---------------------------------------------------------------------------------------
def load_text() -> tuple[list[str], list[str], list[str], str]:
    """(titles, sentences, queries, where from)."""
    corpus, queries = SCIFACT / "corpus.jsonl", SCIFACT / "queries.jsonl"
    if corpus.exists() and queries.exists():
        titles, sentences = [], []
        for line in corpus.open(encoding="utf-8"):
            doc = json.loads(line)
            titles.append(doc.get("title") or "untitled")
            sentences.extend(s for s in re.split(r"(?<=[.!?])\s+", doc["text"]) if s.strip())
        asked = [json.loads(line)["text"] for line in queries.open(encoding="utf-8")]
        return titles, sentences, asked, f"SciFact ({SCIFACT})"
    rng = random.Random(3)
    vocab = [f"w{i}" for i in range(30000)]
    weights = [1 / (i + 1) for i in range(len(vocab))]  # Zipf-like

    def sentence() -> str:
        return " ".join(rng.choices(vocab, weights, k=rng.randint(8, 25))) + "."

    titles = [sentence()[:60] for _ in range(5000)]
    sentences = [sentence() for _ in range(50000)]
    asked = [" ".join(rng.choices(vocab, weights, k=rng.randint(4, 10))) for _ in range(1000)]
    return titles, sentences, asked, "synthetic Zipf words (SciFact not found)"


def clustered_vectors(rng: np.random.Generator, n: int, centres: np.ndarray) -> np.ndarray:
    picks = rng.integers(0, len(centres), n)
    v = centres[picks] + 0.35 * rng.standard_normal((n, DIM)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


async def build(store: SQLiteStore, model_id: str, chunks: int, per_page: int) -> float:
    titles, sentences, _, origin = load_text()
    print(f"building {chunks} chunks ({per_page} per page) from {origin} ...", flush=True)
    rng = np.random.default_rng(11)
    prng = random.Random(11)
    centres = rng.standard_normal((64, DIM)).astype(np.float32)
    await store.ensure_index_model(model_id, DIM)
    await store.create_source(
        SourceRecord(id=SOURCE, site_url="https://bench.atlassian.net/wiki", space_keys=SPACES)
    )
    started = time.perf_counter()
    pages = (chunks + per_page - 1) // per_page
    cursor = 0
    for p in range(pages):
        count = min(per_page, chunks - p * per_page)
        title = titles[p % len(titles)]
        space = SPACES[p % len(SPACES)]
        texts = []
        for _ in range(count):
            words: list[str] = []
            while len(words) < WORDS_PER_CHUNK:
                words.extend(sentences[cursor % len(sentences)].split())
                cursor += 1 + prng.randrange(3)
            texts.append(" ".join(words))
        doc = Document(
            page_id=str(100000 + p),
            space_key=space,
            type="page" if p % 5 else "blogpost",
            title=title,
            version=1,
            status="current",
            created_at=datetime(2024, 1, 1, tzinfo=UTC),
            updated_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(hours=p),
            author="bench",
            labels=(LABELS[p % len(LABELS)],),
            ancestors=(("1", "Home"),),
            web_url=f"https://bench.atlassian.net/wiki/spaces/{space}/pages/{100000 + p}",
            markdown="\n\n".join(texts),
            breadcrumb=f"{space} > Home > {title}",
            code_blocks=(CodeBlock("bash", f"run-job --page {p}", 1),),
        )
        parts = [
            Chunk(doc.page_id, i, (f"Section {i}",), text, text, f"c1:{p}:{i}", WORDS_PER_CHUNK)
            for i, text in enumerate(texts)
        ]
        await store.write_page(SOURCE, doc, parts, clustered_vectors(rng, count, centres))
        if (p + 1) % 500 == 0:
            done = (p + 1) * per_page
            rate = done / (time.perf_counter() - started)
            print(f"  {done} chunks, {rate:.0f} chunks/s", flush=True)
    return time.perf_counter() - started


# --- embedders ------------------------------------------------------------------------------------
class HashQueryEmbedder:
    """Stand-in for ``--embedder hash``: a deterministic query vector, no model."""

    model_id = "bench-hash"
    dimension = DIM
    max_tokens = 256

    async def embed_query(self, text: str) -> np.ndarray:
        rng = np.random.default_rng(abs(hash(text)) % (2**32))
        v = rng.standard_normal(DIM).astype(np.float32)
        return v / np.linalg.norm(v)


def make_embedder(kind: str, settings: Settings) -> Any:
    if kind == "hash":
        return HashQueryEmbedder()
    from confluence_rag.index.embedders import create_embedder

    return create_embedder(settings)


# --- measuring ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


async def timed(queries: Sequence[str], call: Callable[[str], Awaitable[Any]]) -> list[float]:
    out = []
    for query in queries:
        start = time.perf_counter()
        await call(query)
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary(name: str, runs: list[list[float]]) -> tuple[float, float]:
    p50s = [percentile(r, 50) for r in runs]
    p99s = [percentile(r, 99) for r in runs]
    p50, p99 = statistics.median(p50s), statistics.median(p99s)
    per_run = ", ".join(f"{a:.1f}/{b:.1f}" for a, b in zip(p50s, p99s, strict=True))
    print(f"{name:<34} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (runs p50/p99: {per_run})")
    return p50, p99


async def keyword_overlap(store: SQLiteStore, queries: Sequence[str]) -> float:
    """Share of exact-bm25 top-10 chunks that the pruned keyword search also returns."""
    from confluence_rag.store import sqlite_search

    none = SearchFilters()
    shares = []
    for query in queries:
        pruned = await store.keyword_candidates(query, none, 10)
        exact = await store._threads.read(sqlite_search.keyword_candidates, query, none, 10)
        if exact:
            shares.append(len({c for c, _ in pruned} & {c for c, _ in exact}) / len(exact))
    return statistics.mean(shares) if shares else 1.0


async def delete_bench(chunks: int, per_page: int, workdir: Path) -> None:
    """delete_source of ``chunks`` chunks while another task keeps writing heartbeats."""
    from confluence_rag.records import JobRecord

    path = workdir / f"delete-{chunks}.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    async with SQLiteStore(path) as store:
        await build(store, "bench-delete", chunks, per_page)
        await store.create_source(SourceRecord(id="other:X", site_url="https://x"))
        await store.create_job(JobRecord(id="beat", source_id="other:X", kind="crawl"))
        waits: list[float] = []
        done = asyncio.Event()

        async def heartbeat() -> None:
            while not done.is_set():
                start = time.perf_counter()
                await store.update_job("beat", heartbeat_at=datetime.now(UTC))
                waits.append((time.perf_counter() - start) * 1000)
                await asyncio.sleep(0.01)

        beats = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.1)
        start = time.perf_counter()
        await store.delete_source(SOURCE)
        seconds = time.perf_counter() - start
        done.set()
        await beats
        print(
            f"\ndelete_source of {chunks} chunks: {seconds:.2f} s; concurrent heartbeat writes: "
            f"{len(waits)}, p50 {percentile(waits, 50):.1f} ms, max {max(waits):.1f} ms"
        )
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--embedder", choices=("local", "hash"), default="local")
    parser.add_argument(
        "--db",
        type=Path,
        default=Path(tempfile.gettempdir()) / "confluence-rag-bench" / "latency.sqlite3",
        help="cached index (rebuilt if its chunk count differs)",
    )
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument(
        "--delete-chunks", type=int, default=0, help="also time delete_source of this many"
    )
    args = parser.parse_args()

    settings = Settings(data_dir=args.db.parent)
    embedder = make_embedder(args.embedder, settings)
    model_id = embedder.model_id
    db: Path = args.db.with_name(
        f"{args.db.stem}-{args.chunks}-{model_id.replace('/', '_')}.sqlite3"
    )
    if args.rebuild and db.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    store = SQLiteStore(db)
    async with store:
        sources = await store.list_sources()
        if not sources:
            seconds = await build(store, model_id, args.chunks, args.per_page)
            print(
                f"built {args.chunks} chunks in {seconds:.1f} s "
                f"({args.chunks / seconds:.0f} chunks/s through write_page)"
            )
        (source,) = await store.list_sources()
        size = sum(
            Path(f"{db}{s}").stat().st_size for s in ("", "-wal") if Path(f"{db}{s}").exists()
        )
        print(
            f"index: {source.chunk_count} chunks in {source.page_count} pages, "
            f"{size / 1e6:.0f} MB at {db}"
        )

        _, _, questions, origin = load_text()
        queries = questions[: args.queries]
        print(f"queries: {len(queries)} from {origin}; embedder: {model_id}")

        start = time.perf_counter()
        await store.vector_candidates(await embedder.embed_query("warm up"), SearchFilters(), 1)
        print(f"cold start (model + matrix load): {time.perf_counter() - start:.2f} s")

        service = SearchService(store, embedder, settings)
        none = SearchFilters()
        for query in queries[:20]:  # warm caches
            await service.search(query)

        stages: dict[str, list[list[float]]] = {
            "hybrid, chunks mode": [],
            "hybrid, pages mode (the default)": [],
            "hybrid, filtered (space + label)": [],
            "query embedding": [],
            "keyword candidates (50)": [],
            "vector candidates (50)": [],
        }
        vectors = {q: await embedder.embed_query(q) for q in queries}
        filtered = SearchFilters(spaces=("OPS",), labels=("runbook", "howto"))
        for run in range(args.runs):
            stages["hybrid, chunks mode"].append(
                await timed(queries, lambda q: service.search(q, limit=10, mode="chunks"))
            )
            stages["hybrid, pages mode (the default)"].append(
                await timed(queries, lambda q: service.search(q, limit=10, mode="pages"))
            )
            stages["hybrid, filtered (space + label)"].append(
                await timed(queries, lambda q: service.search(q, filters=filtered, mode="pages"))
            )
            stages["query embedding"].append(await timed(queries, embedder.embed_query))
            stages["keyword candidates (50)"].append(
                await timed(queries, lambda q: store.keyword_candidates(q, none, 50))
            )
            stages["vector candidates (50)"].append(
                await timed(queries, lambda q: store.vector_candidates(vectors[q], none, 50))
            )
            print(f"run {run + 1}/{args.runs} done", flush=True)

        overlap = await keyword_overlap(store, queries)

        print(
            f"\n{source.chunk_count} chunks x {DIM} dims, {len(queries)} queries, "
            f"median of {args.runs} runs:"
        )
        results = {name: summary(name, runs) for name, runs in stages.items()}
        p50, p99 = results["hybrid, pages mode (the default)"]
        print(
            f"keyword term pruning: top-10 overlap with exact bm25 {overlap:.1%} "
            "(same chunks among the first 10, averaged over the queries)"
        )
        verdict = "MET" if p50 <= 20 and p99 <= 60 else "NOT MET"
        print(f"\ntarget (pages mode) p50 <= 20 ms, p99 <= 60 ms: {verdict}")
    if hasattr(embedder, "aclose"):
        await embedder.aclose()
    if args.delete_chunks:
        await delete_bench(args.delete_chunks, args.per_page, args.db.parent)


if __name__ == "__main__":
    asyncio.run(main())
