"""PostgreSQL search latency and HNSW recall at 100k chunks.

    .venv/bin/python bench/pg_search_latency.py                      # throwaway server
    .venv/bin/python bench/pg_search_latency.py --url postgresql://... --chunks 100000

What it does, all through ``PostgresStore`` (the code the product runs):

1. Writes ``--chunks`` chunks (``--per-page`` per page) with ``write_page`` and reports the write
   rate. The HNSW index is dropped during the load and rebuilt after it, and the build time is
   reported (what a bulk re-index costs); sizes of table and indexes are printed (sizing).
2. Hybrid search latency (keyword + vector candidates concurrently, RRF fusion with the shared
   ``search.fusion`` code, fetch of the top 10): p50 / p99 over ``--queries`` queries, plus each
   retriever alone.
3. HNSW recall@10 against exact (brute-force numpy) search for each ``--ef-search`` value.

Text is sentences of the SciFact corpus in ``../shared/data/eval`` (real English; random
words if absent). Vectors are SYNTHETIC: ``--dim`` dimensions, clustered (``--clusters``
centres plus noise, unit length) so neighbourhoods look like an embedding model's rather than
uniform noise, which would be HNSW's worst case. Query vectors are fresh draws from the same
clusters; query texts are four words of a stored chunk.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from confluence_rag.content.models import Document  # noqa: E402
from confluence_rag.index.models import Chunk  # noqa: E402
from confluence_rag.records import (  # noqa: E402
    SearchFilters,
    SourceRecord,
)
from confluence_rag.search.fusion import reciprocal_rank_fusion  # noqa: E402
from confluence_rag.store.postgres import PostgresStore  # noqa: E402
from confluence_rag.store.postgres_schema import HNSW_INDEX  # noqa: E402

SOURCE = "bench.atlassian.net:BENCH"
SPACES = ("ENG", "OPS", "SALES", "HR")
CANDIDATES = 50


def load_sentences(limit_docs: int = 6000) -> tuple[list[str], list[str]]:
    """(titles, sentences) from SciFact, or generated words if the shared data is absent."""
    corpus = REPO.parent / "shared" / "data" / "eval" / "scifact" / "corpus.jsonl"
    titles: list[str] = []
    sentences: list[str] = []
    if corpus.exists():
        with corpus.open() as fh:
            for line in list(fh)[:limit_docs]:
                doc = json.loads(line)
                titles.append(doc.get("title") or "Untitled")
                sentences.extend(
                    s.strip() for s in re.split(r"(?<=[.!?])\s+", doc["text"]) if len(s) > 30
                )
        return titles, sentences
    rng = random.Random(1)
    vocab = [f"word{i}" for i in range(20000)]
    titles = [" ".join(rng.choices(vocab, k=4)) for _ in range(2000)]
    sentences = [" ".join(rng.choices(vocab, k=15)) for _ in range(40000)]
    return titles, sentences


def make_vectors(
    n: int, dim: int, clusters: int, noise: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(vectors, centres)``: unit vectors, each a cluster centre plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    return sample(centres, n, noise, rng), centres


def sample(centres: np.ndarray, n: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Mean cosine within a cluster is about 1 / (1 + noise**2)."""
    assign = rng.integers(0, len(centres), n)
    jitter = rng.standard_normal((n, centres.shape[1])).astype(np.float32)
    vectors = centres[assign] + noise * jitter
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def load(
    store: PostgresStore, args: argparse.Namespace, vectors: np.ndarray, write: bool = True
) -> list[str]:
    titles, sentences = load_sentences()
    rng = random.Random(args.seed)
    pages = args.chunks // args.per_page
    texts: list[str] = []
    queue: asyncio.Queue[int | None] = asyncio.Queue()

    def page_payload(page: int) -> tuple[Document, list[Chunk], np.ndarray]:
        title = f"{titles[page % len(titles)]} ({page})"
        space = SPACES[page % len(SPACES)]
        doc = Document(
            page_id=str(100000 + page), space_key=space, type="page", title=title, version=1,
            status="current", created_at=None, updated_at=None, author="bench",
            labels=("bench", space.lower()), ancestors=(), markdown="",
            web_url=f"https://bench.atlassian.net/wiki/spaces/{space}/pages/{page}",
            breadcrumb=f"{space} > {title}",
        )  # fmt: skip
        chunks = []
        for ordinal in range(args.per_page):
            text = " ".join(rng.choices(sentences, k=3))
            texts.append(text)
            digest = hashlib.sha256(f"{page}:{ordinal}:{text}".encode()).hexdigest()
            chunks.append(
                Chunk(doc.page_id, ordinal, (f"Section {ordinal}",), text, text, digest, 120)
            )
        start = page * args.per_page
        return doc, chunks, vectors[start : start + args.per_page]

    payloads = [page_payload(page) for page in range(pages)]
    if not write:
        return texts

    async def writer() -> None:
        while (page := await queue.get()) is not None:
            doc, chunks, matrix = payloads[page]
            await store.write_page(SOURCE, doc, chunks, matrix)

    for page in range(pages):
        queue.put_nowait(page)
    for _ in range(args.writers):
        queue.put_nowait(None)
    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(args.writers)))
    elapsed = time.perf_counter() - started
    print(
        f"write_page: {pages} pages / {pages * args.per_page} chunks in {elapsed:.1f} s "
        f"({pages * args.per_page / elapsed:,.0f} chunks/s, {args.writers} concurrent writers, "
        "HNSW index dropped)"
    )
    return texts


async def run(args: argparse.Namespace, url: str) -> None:
    import psycopg

    vectors, centres = make_vectors(args.chunks, args.dim, args.clusters, args.noise, args.seed)
    store = PostgresStore(url, max_connections=args.writers + 4, ef_search=args.ef_search[0])
    async with store:
        await store.ensure_index_model("bench-synthetic", args.dim)
        loaded = await store.count_pages(SOURCE) if await store.list_sources() else 0
        if loaded and args.reuse:
            # Same seed, same data: regenerate the texts without writing them again.
            print(f"reusing the {loaded} pages already loaded")
            texts = await load(store, args, vectors, write=False)
        else:
            await store.create_source(
                SourceRecord(id=SOURCE, site_url="https://bench.atlassian.net")
            )
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                await conn.execute(f"DROP INDEX {HNSW_INDEX}")
            texts = await load(store, args, vectors)
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            if not (loaded and args.reuse):
                await conn.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")
                started = time.perf_counter()
                await conn.execute(
                    f"CREATE INDEX {HNSW_INDEX} ON chunks USING hnsw (embedding vector_cosine_ops)"
                )
                print(
                    f"HNSW build (m=16, ef_construction=64, maintenance_work_mem="
                    f"{args.maintenance_work_mem}): {time.perf_counter() - started:.1f} s"
                )
                await conn.execute("VACUUM ANALYZE")
            cur = await conn.execute(
                "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname IN "
                "('chunks', 'pages', %s, 'ix_chunks_tsv', 'code_examples') ORDER BY relname",
                (HNSW_INDEX,),
            )
            for name, size in await cur.fetchall():
                print(f"  size {name:<28} {size / 2**20:8.1f} MiB")
            cur = await conn.execute("SELECT pg_database_size(current_database())")
            row = await cur.fetchone()
            assert row is not None
            print(f"  size database total            {row[0] / 2**20:8.1f} MiB")

        # Chunk ids in load order (pages were written concurrently, so page ids are not).
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            cur = await conn.execute(
                "SELECT c.id FROM chunks c JOIN pages p ON p.id = c.page_id "
                "ORDER BY p.confluence_page_id::int, c.ordinal"
            )
            ids = np.array([r[0] for r in await cur.fetchall()], dtype=np.int64)

        rng = np.random.default_rng(args.seed + 1)
        picks = rng.integers(0, args.chunks, args.queries)
        # Query vectors are new draws from the same distribution as the stored ones (not
        # copies of them), like a question embedded by the model that embedded the pages.
        queries = sample(centres, args.queries, args.noise, rng)
        words_rng = random.Random(args.seed + 2)
        query_texts = []
        for p in picks:
            words = re.findall(r"[A-Za-z]{4,}", texts[int(p)])
            query_texts.append(" ".join(words_rng.sample(words, k=min(4, len(words)))))

        filters = SearchFilters()
        for _ in range(10):  # warm up caches and connections
            await store.vector_candidates(queries[0], filters, CANDIDATES)
            await store.keyword_candidates(query_texts[0], filters, CANDIDATES)

        exact = [ids[np.argsort(-(vectors @ q), kind="stable")[:10]] for q in queries]
        for ef in args.ef_search:
            store.ef_search = ef
            recalls = []
            for q, truth in zip(queries, exact, strict=True):
                got = [cid for cid, _ in await store.vector_candidates(q, filters, 10)]
                recalls.append(len(set(got) & set(truth.tolist())) / 10)
            print(f"HNSW recall@10 vs exact, ef_search={ef}: {statistics.mean(recalls):.3f}")

        store.ef_search = args.ef_search[0]
        timings: dict[str, list[float]] = {"hybrid": [], "keyword": [], "vector": []}
        for q, text in zip(queries, query_texts, strict=True):
            t0 = time.perf_counter()
            await store.keyword_candidates(text, filters, CANDIDATES)
            t1 = time.perf_counter()
            await store.vector_candidates(q, filters, CANDIDATES)
            t2 = time.perf_counter()
            keyword, vector = await asyncio.gather(
                store.keyword_candidates(text, filters, CANDIDATES),
                store.vector_candidates(q, filters, CANDIDATES),
            )
            fused = reciprocal_rank_fusion([vector, keyword], limit=10)
            rows = await store.fetch_chunks([f.id for f in fused])
            t3 = time.perf_counter()
            assert rows, "hybrid search found nothing"
            timings["keyword"].append((t1 - t0) * 1000)
            timings["vector"].append((t2 - t1) * 1000)
            timings["hybrid"].append((t3 - t2) * 1000)
        for name, values in timings.items():
            print(
                f"{name:>7} latency over {len(values)} queries (ef_search={store.ef_search}): "
                f"p50 {percentile(values, 50):.1f} ms, p99 {percentile(values, 99):.1f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--per-page", type=int, default=20)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument(
        "--noise", type=float, default=1.5, help="cluster spread (1.5: mean cosine ~0.3 within)"
    )
    parser.add_argument(
        "--ef-search", type=lambda s: [int(x) for x in s.split(",")], default=[100, 40, 200]
    )
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--maintenance-work-mem", default="512MB")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--reuse", action="store_true", help="with --url: keep pages already loaded by a run"
    )
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(args, args.url))
        return
    from tests.plugins.postgres import ThrowawayPostgres, prepare_template, with_database

    server = ThrowawayPostgres()
    try:
        server.start()
        prepare_template(server.url)
        print(f"throwaway PostgreSQL 16 + pgvector on port {server.port}")
        asyncio.run(run(args, with_database(server.url, "confluence_rag_template")))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
