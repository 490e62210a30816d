"""Retrieval quality on a BEIR collection, through the real chunker, embedder, store and search.

    .venv/bin/python -m bench.retrieval [--collection PATH] [--split test] [--tune]
                                        [--prefilter-pool N]

Each BEIR document becomes one page (title + text, chunked by our chunker; the title is the
breadcrumb, so it leads every chunk's embedded text); the page is written to a fresh SQLite store
with its vectors; every query of the split runs through ``SearchService`` as keyword-only,
vector-only and hybrid, in ``pages`` mode (a document's score is that of its best chunk), and
nDCG@10 / Recall@100 are computed here (see ``bench/beir.py``) next to the published numbers.

Vectors are cached in ``bench/results/`` by model and corpus hash, so only the first run embeds
(~6 minutes for SciFact on this machine). ``--tune`` searches the fusion settings on the train
qrels only; the figures to report are the test split's with the settings' defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from bench.beir import (
    RESULTS_DIR,
    BeirCollection,
    EmbeddingCache,
    default_collection_path,
    evaluate,
    load_collection,
    ndcg_at_k,
)

from confluence_rag.content.models import Document
from confluence_rag.errors import SourceNotFound
from confluence_rag.index.chunking import chunk_document
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.index.models import Chunk
from confluence_rag.records import SearchFilters, SourceRecord, split_page_key
from confluence_rag.search.fusion import reciprocal_rank_fusion
from confluence_rag.search.service import PAGES_CANDIDATE_FACTOR, Retriever, SearchService
from confluence_rag.settings import Settings
from confluence_rag.store import Store, open_store, vector_index

EMBED_SLICE = 512  # texts per cache save, so an interrupted first run keeps its progress
SOURCE_ID = "beir"
RETRIEVERS_REPORTED: tuple[Retriever, ...] = ("keyword", "semantic", "hybrid")
# The grid --tune searches (train qrels only).
TUNE_CANDIDATES = (20, 30, 50, 75, 100, 150)
TUNE_K = (5, 10, 20, 40, 60, 100)
TUNE_WEIGHTS = ((1.0, 1.0), (1.0, 0.8), (0.8, 1.0), (1.0, 0.6), (0.6, 1.0), (1.0, 1.25))


@dataclass(frozen=True, slots=True)
class PreparedCorpus:
    documents: list[Document]
    chunks: list[list[Chunk]]  # per document
    vectors: list[np.ndarray]  # per document: (chunks, dim)


def beir_document(doc_id: str, title: str, text: str) -> Document:
    return Document(
        page_id=doc_id,
        space_key="BEIR",
        type="page",
        title=title,
        version=1,
        status="current",
        created_at=None,
        updated_at=None,
        author=None,
        labels=(),
        ancestors=(),
        web_url=f"https://beir.invalid/{doc_id}",
        markdown=text,
        breadcrumb=title,
    )


def chunk_corpus(
    collection: BeirCollection, embedder: Embedder, settings: Settings
) -> tuple[list[Document], list[list[Chunk]]]:
    max_tokens = min(settings.chunk_max_tokens, embedder.max_tokens)
    documents = [beir_document(d.doc_id, d.title, d.text) for d in collection.corpus]
    chunks = [
        chunk_document(doc, embedder.count_tokens, settings.chunk_target_tokens, max_tokens)
        for doc in documents
    ]
    return documents, chunks


async def embed_cached(
    embedder: Embedder, cache: EmbeddingCache, texts_by_hash: dict[str, str]
) -> None:
    missing = cache.missing(texts_by_hash)
    if not missing:
        return
    print(f"embedding {len(missing)} texts not in {cache.path.name} ...", flush=True)
    started = time.perf_counter()
    for start in range(0, len(missing), EMBED_SLICE):
        hashes = missing[start : start + EMBED_SLICE]
        vectors = await embedder.embed_documents([texts_by_hash[h] for h in hashes])
        cache.put(hashes, vectors)
        cache.save()
        done = start + len(hashes)
        rate = done / (time.perf_counter() - started)
        print(f"  {done}/{len(missing)} ({rate:.1f}/s)", flush=True)


async def prepare(
    collection: BeirCollection, embedder: Embedder, settings: Settings
) -> PreparedCorpus:
    started = time.perf_counter()
    documents, chunks = chunk_corpus(collection, embedder, settings)
    total = sum(len(c) for c in chunks)
    print(
        f"{collection.name}: {len(documents)} documents -> {total} chunks "
        f"in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    cache = EmbeddingCache(embedder.model_id, collection.corpus_hash())
    await embed_cached(
        embedder, cache, {c.content_hash: c.embed_text for doc in chunks for c in doc}
    )
    vectors = [
        cache.get([c.content_hash for c in doc])
        if doc
        else np.zeros((0, embedder.dimension), np.float32)
        for doc in chunks
    ]
    return PreparedCorpus(documents, chunks, vectors)


async def index_corpus(store: Store, prepared: PreparedCorpus, embedder: Embedder) -> None:
    """Write every document (with its cached vectors) unless this store already holds them."""
    await store.ensure_index_model(embedder.model_id, embedder.dimension)
    expected = sum(1 for chunks in prepared.chunks if chunks)
    try:
        await store.get_source(SOURCE_ID)
    except SourceNotFound:
        await store.create_source(
            SourceRecord(id=SOURCE_ID, site_url="https://beir.invalid", space_keys=("BEIR",))
        )
    if await store.count_pages(SOURCE_ID) == expected:
        print(f"store already holds {expected} pages", flush=True)
        return
    started = time.perf_counter()
    for document, chunks, vectors in zip(
        prepared.documents, prepared.chunks, prepared.vectors, strict=True
    ):
        if chunks:
            await store.write_page(SOURCE_ID, document, chunks, vectors)
    elapsed = time.perf_counter() - started
    print(f"wrote {expected} pages in {elapsed:.1f} s ({expected / elapsed:.0f}/s)", flush=True)


def doc_id_of(page_key: str) -> str:
    return split_page_key(page_key)[1]


async def run_service(
    service: SearchService, queries: dict[str, str], retriever: Retriever
) -> tuple[dict[str, list[str]], float]:
    """Ranked document ids per query (pages mode: a document ranks by its best chunk), and the
    median latency in ms."""
    run: dict[str, list[str]] = {}
    latencies = []
    for query_id, text in queries.items():
        started = time.perf_counter()
        hits = await service.search(text, limit=100, mode="pages", retriever=retriever)
        latencies.append((time.perf_counter() - started) * 1000)
        run[query_id] = [doc_id_of(hit.page_id) for hit in hits]
    return run, statistics.median(latencies)


# --- tuning ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidates:
    keyword: list[tuple[int, float]]
    semantic: list[tuple[int, float]]


async def collect_candidates(
    store: Store, embedder: Embedder, queries: dict[str, str], depth: int
) -> tuple[dict[str, Candidates], dict[int, str]]:
    """Both retrievers' chunk candidates per query, straight from the store (what the service
    fuses), and the document of every chunk seen."""
    vectors = await embedder.embed_documents(list(queries.values()))
    candidates: dict[str, Candidates] = {}
    for (query_id, text), vector in zip(queries.items(), vectors, strict=True):
        keyword = await store.keyword_candidates(text, SearchFilters(), depth)
        semantic = await store.vector_candidates(vector, SearchFilters(), depth)
        candidates[query_id] = Candidates(keyword, semantic)
    ids = {i for c in candidates.values() for i, _ in c.keyword + c.semantic}
    rows = await store.fetch_chunks(sorted(ids))
    return candidates, {row.chunk_id: doc_id_of(row.page_key) for row in rows}


def fused_run(
    candidates: dict[str, Candidates],
    doc_of: dict[int, str],
    *,
    depth: int,
    k: int,
    weights: tuple[float, float],
) -> dict[str, list[str]]:
    """What the service's hybrid pages mode returns, from precomputed candidates."""
    run = {}
    for query_id, c in candidates.items():
        lists = [c.keyword[:depth], c.semantic[:depth]]
        fused = reciprocal_rank_fusion(lists, k=k, weights=weights)
        docs = dict.fromkeys(doc_of[f.id] for f in fused if f.id in doc_of)
        run[query_id] = list(docs)[:100]
    return run


async def tune(
    store: Store, embedder: Embedder, collection: BeirCollection, settings: Settings
) -> None:
    qrels = collection.qrels("train")
    queries = {q: collection.queries[q] for q in qrels}
    depths = [c * PAGES_CANDIDATE_FACTOR for c in TUNE_CANDIDATES]
    candidates, doc_of = await collect_candidates(store, embedder, queries, max(depths))
    judged = [q for q, docs in qrels.items() if any(g > 0 for g in docs.values())]
    results = []
    for per_retriever, depth in zip(TUNE_CANDIDATES, depths, strict=True):
        for k in TUNE_K:
            for weights in TUNE_WEIGHTS:
                run = fused_run(candidates, doc_of, depth=depth, k=k, weights=weights)
                per_query = np.array([ndcg_at_k(run.get(q, []), qrels[q], 10) for q in judged])
                recall = evaluate(run, qrels)["recall@100"]
                results.append((per_query, recall, (per_retriever, k, weights)))
    results.sort(key=lambda r: -r[0].mean())
    current = (
        settings.search_candidates,
        settings.rrf_k,
        (settings.keyword_weight, settings.semantic_weight),
    )
    baseline = next((r[0] for r in results if r[2] == current), None)
    print(f"\ntuning on {len(judged)} TRAIN queries (hybrid, pages mode); best first:")
    print("  nDCG@10  R@100   vs current (paired SE)  candidates  rrf_k  weights (kw, sem)")
    for per_query, recall, (per_retriever, k, weights) in results[:15]:
        delta = ""
        if baseline is not None:
            diff = per_query - baseline
            delta = f"{diff.mean():+.4f} ({diff.std(ddof=1) / np.sqrt(len(diff)):.4f})"
        print(
            f"  {per_query.mean():.4f}  {recall:.4f}  {delta:>22}  {per_retriever:>10}  {k:>5}"
            f"  {weights}"
        )
    if baseline is not None:
        print(f"  current settings {current}: nDCG@10 {baseline.mean():.4f}")


# --- report ----------------------------------------------------------------------------------


def published_rows(collection: BeirCollection) -> list[str]:
    path = collection.path.parent / "PUBLISHED_NUMBERS.md"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next((line for line in lines if line.startswith("| Collection")), None)
    row = next(
        (line for line in lines if line.lower().startswith(f"| {collection.name.lower()} ")), None
    )
    return [line for line in (header, row) if line]


async def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if args.prefilter_pool is not None:
        vector_index.PREFILTER_MIN_ROWS = 0
        vector_index.PREFILTER_POOL = args.prefilter_pool
        vector_index.POOL_PER_RESULT = 0
    collection = load_collection(args.collection)
    overrides = {
        name: value
        for name, value in (
            ("search_candidates", args.candidates),
            ("rrf_k", args.rrf_k),
            ("keyword_weight", args.keyword_weight),
            ("semantic_weight", args.semantic_weight),
        )
        if value is not None
    }
    probe_settings = Settings(data_dir=RESULTS_DIR)
    embedder = create_embedder(probe_settings)
    try:
        prepared = await prepare(collection, embedder, probe_settings)
        digest = hashlib.sha256(
            "".join(c.content_hash for doc in prepared.chunks for c in doc).encode()
        ).hexdigest()[:16]
        index_dir = RESULTS_DIR / f"index-{collection.name}-{digest}"
        settings = Settings(data_dir=index_dir, **overrides)
        async with open_store(settings) as store:
            await index_corpus(store, prepared, embedder)
            if args.tune:
                await tune(store, embedder, collection, settings)
            qrels = collection.qrels(args.split)
            queries = {q: collection.queries[q] for q in qrels}
            service = SearchService(store, embedder, settings)
            print(
                f"\n{collection.name} {args.split}: {len(queries)} queries; "
                f"search_candidates={settings.search_candidates} rrf_k={settings.rrf_k} "
                f"keyword_weight={settings.keyword_weight} "
                f"semantic_weight={settings.semantic_weight}"
            )
            print("  retriever   nDCG@10  Recall@100  median ms/query")
            for retriever in RETRIEVERS_REPORTED:
                run, latency = await run_service(service, queries, retriever)
                scores = evaluate(run, qrels)
                print(
                    f"  {retriever:<10}  {scores['ndcg@10']:.4f}  {scores['recall@100']:.4f}"
                    f"      {latency:.1f}",
                    flush=True,
                )
        for line in published_rows(collection):
            print(line)
    finally:
        await embedder.aclose()


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--collection", type=Path, default=default_collection_path("scifact"))
    parser.add_argument("--split", default="test", help="qrels split to report (default test)")
    parser.add_argument("--tune", action="store_true", help="grid-search fusion on train qrels")
    parser.add_argument("--candidates", type=int, help="override search_candidates")
    parser.add_argument("--rrf-k", type=int, help="override rrf_k")
    parser.add_argument("--keyword-weight", type=float, help="override keyword_weight")
    parser.add_argument("--semantic-weight", type=float, help="override semantic_weight")
    parser.add_argument(
        "--prefilter-pool",
        type=int,
        help="score vectors through the sign-code prefilter, whatever the index size, with "
        "exactly this many rows scored per search (by default it is used from "
        f"{vector_index.PREFILTER_MIN_ROWS} chunks on, scoring {vector_index.PREFILTER_POOL} "
        f"rows or {vector_index.POOL_PER_RESULT} per candidate; SciFact is smaller)",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main())
