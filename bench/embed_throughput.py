"""Embedding throughput of the default local model: chunks/s and query latency.

    .venv/bin/python -m bench.embed_throughput [--chunks 256] [--batch-sizes 16,32,64]
                                               [--repeats 3] [--threads N]

Chunks are real prose: SciFact abstracts (from the shared data) chunked by our chunker with a
256-token target, keeping chunks of 200-256 tokens as the model reads them (special tokens
included); synthetic text if the shared data is missing. Every figure is the median of
``--repeats`` runs after a warm-up; the model load is timed separately.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from pathlib import Path

from bench.beir import default_collection_path, load_collection

from confluence_rag.index.chunking import chunk_markdown
from confluence_rag.index.local_embedder import LocalEmbedder
from confluence_rag.settings import Settings

QUERIES = [
    "how do I restart the database",
    "vitamin D deficiency and bone fractures",
    "rotate api keys for the billing service",
    "what causes kafka consumer lag",
    "deploy with helm to the staging cluster",
    "side effects of statins in older adults",
    "where is the on-call runbook",
    "gene expression in tumour cells",
]


def sample_chunks(embedder: LocalEmbedder, wanted: int) -> tuple[list[str], str]:
    path = default_collection_path("scifact")
    texts: list[str] = []
    if (path / "corpus.jsonl").is_file():
        for doc in load_collection(path).corpus:
            for chunk in chunk_markdown(
                doc.text, embedder.count_tokens, breadcrumb=doc.title, target_tokens=256
            ):
                if 200 <= chunk.token_count <= 256:
                    texts.append(chunk.embed_text)
            if len(texts) >= wanted:
                return texts[:wanted], f"SciFact chunks ({path})"
    words = "the service reads configuration from the cluster and retries failed requests".split()
    filler = " ".join(words[i % len(words)] for i in range(5000))
    texts = [
        c.embed_text
        for c in chunk_markdown(filler, embedder.count_tokens, target_tokens=256)
        if c.token_count >= 200
    ]
    return (texts * (wanted // max(len(texts), 1) + 1))[:wanted], "synthetic text"


async def chunks_per_second(embedder: LocalEmbedder, texts: list[str]) -> float:
    started = time.perf_counter()
    vectors = await embedder.embed_documents(texts)
    elapsed = time.perf_counter() - started
    assert vectors.shape == (len(texts), embedder.dimension)
    return len(texts) / elapsed


async def query_latencies_ms(embedder: LocalEmbedder) -> list[float]:
    latencies = []
    for query in QUERIES * 3:
        started = time.perf_counter()
        await embedder.embed_query(query)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=256)
    parser.add_argument("--batch-sizes", default="16,32,64")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    data_dir = Path("/nonexistent-bench-data")  # nothing is written

    probe = LocalEmbedder(Settings(data_dir=data_dir, torch_threads=args.threads))
    texts, origin = sample_chunks(probe, args.chunks)
    tokens = [probe.count_tokens(t) for t in texts]
    started = time.perf_counter()
    probe.load()
    load_seconds = time.perf_counter() - started
    import torch

    print(f"model: {probe.model_id} from {probe.model_dir}")
    threads = torch.get_num_threads()
    print(f"load (import + weights): {load_seconds:.1f} s; torch threads: {threads}")
    print(
        f"texts: {len(texts)} {origin}, tokens min/median/max "
        f"{min(tokens)}/{statistics.median(tokens):.0f}/{max(tokens)}"
    )
    await probe.embed_documents(texts[:16])  # warm-up
    probe.close()

    for batch_size in batch_sizes:
        embedder = LocalEmbedder(
            Settings(data_dir=data_dir, torch_threads=args.threads, embed_batch_size=batch_size)
        )
        rates = [await chunks_per_second(embedder, texts) for _ in range(args.repeats)]
        embedder.close()
        runs = ", ".join(f"{r:.1f}" for r in rates)
        print(f"batch {batch_size:>3}: {statistics.median(rates):6.1f} chunks/s (runs: {runs})")

    embedder = LocalEmbedder(Settings(data_dir=data_dir, torch_threads=args.threads))
    await embedder.embed_query("warm up")
    medians, p95s = [], []
    for _ in range(args.repeats):
        latencies = sorted(await query_latencies_ms(embedder))
        medians.append(statistics.median(latencies))
        p95s.append(latencies[int(len(latencies) * 0.95) - 1])
    embedder.close()
    print(
        f"query embedding: median {statistics.median(medians):.1f} ms, "
        f"p95 {statistics.median(p95s):.1f} ms (median of {args.repeats} runs of "
        f"{len(QUERIES) * 3} queries)"
    )


if __name__ == "__main__":
    asyncio.run(main())
