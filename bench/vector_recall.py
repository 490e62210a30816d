"""What the sign-code prefilter of the vector index keeps, on real MiniLM vectors.

    .venv/bin/python -m bench.vector_recall [--rows 60000] [--queries 300] [--pools 1000,2000,4000]

Rows are real text embedded by the default model: every sentence (of 5+ words) of the SciFact
corpus, its documents whole, and the CQADupStack questions in ``../shared/data/eval`` (science,
programming, unix, web: a mix of domains, as in a wiki). The first run embeds them (~10 minutes
here), cached in ``bench/results/``. Queries are SciFact claims, embedded as queries.

For each query, ``VectorIndex.search`` with the prefilter on is compared with exact brute force
(the same index with the prefilter off): recall of the exact top 10, 50 (the hybrid search's
candidate depth) and 150 (its depth in pages mode), mean and worst query, at the default pool and
at each ``--pools`` size; then the time per search both ways. Half the rows are measured too, to
show how recall moves as the index grows.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import statistics
import time
from pathlib import Path

import numpy as np
from bench.beir import EmbeddingCache, shared_data_dir
from bench.retrieval import embed_cached

from confluence_rag.index.local_embedder import LocalEmbedder
from confluence_rag.settings import Settings
from confluence_rag.store import vector_index
from confluence_rag.store.vector_index import VectorIndex

DEPTHS = (10, 50, 150)
CACHE_KEY = "vector-recall-v1"


def real_texts(eval_dir: Path) -> tuple[list[str], list[str]]:
    """(rows, queries) from the shared evaluation data."""
    rows: list[str] = []
    for line in (eval_dir / "scifact" / "corpus.jsonl").open(encoding="utf-8"):
        doc = json.loads(line)
        rows.append(f"{doc.get('title', '')}\n{doc['text']}")
        rows.extend(s for s in re.split(r"(?<=[.!?])\s+", doc["text"]) if len(s.split()) >= 5)
    for collection in sorted(eval_dir.glob("cqadupstack-*")):
        for line in (collection / "queries.jsonl").open(encoding="utf-8"):
            rows.append(json.loads(line)["text"])
    queries = [
        json.loads(line)["text"]
        for line in (eval_dir / "scifact" / "queries.jsonl").open(encoding="utf-8")
    ]
    return list(dict.fromkeys(rows)), queries


async def embedded(embedder: LocalEmbedder, texts: list[str], as_queries: bool) -> np.ndarray:
    """Vectors of ``texts`` (as documents, or one by one as queries), cached by text hash."""
    cache = EmbeddingCache(embedder.model_id, CACHE_KEY + ("-queries" if as_queries else ""))
    by_hash = {hashlib.sha256(t.encode()).hexdigest(): t for t in texts}
    missing = cache.missing(by_hash)
    if as_queries and missing:
        cache.put(missing, np.stack([await embedder.embed_query(by_hash[h]) for h in missing]))
        cache.save()
    elif missing:
        await embed_cached(embedder, cache, by_hash)
    return cache.get(list(by_hash))


def build(vectors: np.ndarray, **options: int) -> VectorIndex:
    index = VectorIndex(vectors.shape[1], **options)
    index.upsert(list(range(len(vectors))), [i // 10 for i in range(len(vectors))], vectors)
    return index


def recall_table(
    vectors: np.ndarray, queries: np.ndarray, pools: list[int]
) -> list[tuple[int, dict[int, tuple[float, float]]]]:
    """Per pool: depth -> (mean recall, worst query's recall) against exact search."""
    exact_index = build(vectors, prefilter_min_rows=len(vectors) + 1)
    exact = [[c for c, _ in exact_index.search(q, max(DEPTHS))] for q in queries]
    table = []
    for pool in pools:
        index = build(vectors, prefilter_min_rows=0, prefilter_pool=pool)
        per_depth: dict[int, list[float]] = {d: [] for d in DEPTHS}
        for q, truth in zip(queries, exact, strict=True):
            for depth in DEPTHS:
                got = {c for c, _ in index.search(q, depth)}
                per_depth[depth].append(len(got & set(truth[:depth])) / depth)
        table.append((pool, {d: (statistics.mean(r), min(r)) for d, r in per_depth.items()}))
    return table


def search_ms(index: VectorIndex, queries: np.ndarray, depth: int) -> float:
    for q in queries[:10]:
        index.search(q, depth)
    times = []
    for q in queries:
        started = time.perf_counter()
        index.search(q, depth)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--pools", default="1000,2000,4000")
    args = parser.parse_args()
    eval_dir = shared_data_dir() / "eval"
    if not (eval_dir / "scifact" / "corpus.jsonl").is_file():
        raise SystemExit(f"needs the shared evaluation data in {eval_dir}")
    rows, queries = real_texts(eval_dir)
    rows, queries = rows[: args.rows], queries[: args.queries]
    embedder = LocalEmbedder(Settings())
    print(f"{len(rows)} rows, {len(queries)} queries, all-MiniLM-L6-v2", flush=True)
    matrix = await embedded(embedder, rows, as_queries=False)
    asked = await embedded(embedder, queries, as_queries=True)
    pools = sorted({vector_index.PREFILTER_POOL, *(int(p) for p in args.pools.split(","))})
    for size in (len(matrix) // 2, len(matrix)):
        print(f"\n{size} rows: recall of the exact top k (mean / worst query)")
        print("pool   " + "".join(f"   top {d:<3}        " for d in DEPTHS))
        for pool, recalls in recall_table(matrix[:size], asked, pools):
            mark = " (default)" if pool == vector_index.PREFILTER_POOL else ""
            cells = "".join(f"   {m:.4f} / {w:.2f}  " for m, w in recalls.values())
            print(f"{pool:<6}{cells}{mark}")
    exact_index = build(matrix, prefilter_min_rows=len(matrix) + 1)
    prefiltered = build(matrix, prefilter_min_rows=0)
    print(f"\nmedian ms per search at {len(matrix)} rows (exact / prefiltered)")
    for depth in (50, 150):
        print(
            f"  top {depth}: {search_ms(exact_index, asked, depth):.2f} / "
            f"{search_ms(prefiltered, asked, depth):.2f}"
        )


if __name__ == "__main__":
    asyncio.run(main())
