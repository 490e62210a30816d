"""BEIR-layout collections, retrieval metrics and an embedding cache for the benchmarks.

Layout (as BEIR ships it): ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``), ``qrels/<split>.tsv`` (``query-id  corpus-id  score`` with a header row).

Metrics follow the BEIR / pytrec_eval definitions: nDCG@k with linear graded gains and a log2
discount, the ideal ranking taken from all judged documents of the query; Recall@k the share of
relevant (grade > 0) documents in the top k. Every query with a relevant judgement counts; a
query that retrieved nothing scores 0 (pytrec_eval would silently drop it).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "bench" / "results"

Qrels = dict[str, dict[str, int]]  # query id -> doc id -> grade
Run = Mapping[str, Sequence[str]]  # query id -> ranked doc ids, best first


@dataclass(frozen=True, slots=True)
class BeirDoc:
    doc_id: str
    title: str
    text: str


@dataclass(frozen=True, slots=True)
class BeirCollection:
    name: str
    path: Path
    corpus: list[BeirDoc]
    queries: dict[str, str]

    def qrels(self, split: str) -> Qrels:
        return load_qrels(self.path / "qrels" / f"{split}.tsv")

    def corpus_hash(self) -> str:
        """Identifies the corpus content (for cache keys)."""
        digest = hashlib.sha256()
        for doc in self.corpus:
            for part in (doc.doc_id, doc.title, doc.text):
                digest.update(part.encode("utf-8"))
                digest.update(b"\x00")
        return digest.hexdigest()


def shared_data_dir() -> Path:
    """``CONFLUENCE_RAG_SHARED_DATA`` or ``../shared/data`` next to the repository."""
    env = os.environ.get("CONFLUENCE_RAG_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def default_collection_path(name: str = "scifact") -> Path:
    return shared_data_dir() / "eval" / name


def load_collection(path: Path) -> BeirCollection:
    if not (path / "corpus.jsonl").is_file():
        raise FileNotFoundError(f"no BEIR collection at {path} (corpus.jsonl missing)")
    corpus = [
        BeirDoc(str(row["_id"]), str(row.get("title") or ""), str(row.get("text") or ""))
        for row in _jsonl(path / "corpus.jsonl")
    ]
    queries = {str(row["_id"]): str(row["text"]) for row in _jsonl(path / "queries.jsonl")}
    return BeirCollection(path.name, path, corpus, queries)


def load_qrels(path: Path) -> Qrels:
    qrels: Qrels = {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter="\t")
        for row in reader:
            if not row or row[0] == "query-id":
                continue
            query_id, doc_id, grade = row[0], row[1], int(row[2])
            qrels.setdefault(query_id, {})[doc_id] = grade
    return qrels


def _jsonl(path: Path) -> Iterable[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


# --- metrics ---------------------------------------------------------------------------------


def ndcg_at_k(ranked: Sequence[str], judgements: Mapping[str, int], k: int) -> float:
    ideal = sorted((g for g in judgements.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    if idcg == 0:
        return 0.0
    dcg = sum(judgements.get(doc, 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    return dcg / idcg


def recall_at_k(ranked: Sequence[str], judgements: Mapping[str, int], k: int) -> float:
    relevant = {doc for doc, grade in judgements.items() if grade > 0}
    if not relevant:
        return 0.0
    return len(relevant.intersection(ranked[:k])) / len(relevant)


def evaluate(run: Run, qrels: Qrels, k_ndcg: int = 10, k_recall: int = 100) -> dict[str, float]:
    """Mean nDCG@k and Recall@k over every query with a relevant judgement."""
    judged = [q for q, docs in qrels.items() if any(g > 0 for g in docs.values())]
    if not judged:
        raise ValueError("no query has a relevant judgement")
    ndcg = [ndcg_at_k(run.get(q, ()), qrels[q], k_ndcg) for q in judged]
    recall = [recall_at_k(run.get(q, ()), qrels[q], k_recall) for q in judged]
    return {
        f"ndcg@{k_ndcg}": sum(ndcg) / len(judged),
        f"recall@{k_recall}": sum(recall) / len(judged),
        "queries": float(len(judged)),
    }


def best_chunk_ranking(hits: Iterable[tuple[str, float]]) -> list[str]:
    """Documents ranked by their best chunk: ``hits`` are (doc id, score) per chunk, any order."""
    best: dict[str, float] = {}
    for doc_id, score in hits:
        if doc_id not in best or score > best[doc_id]:
            best[doc_id] = score
    return sorted(best, key=lambda doc: (-best[doc], doc))


# --- embedding cache ---------------------------------------------------------------------------


class EmbeddingCache:
    """Vectors by content hash in one ``.npz`` file, so a rerun embeds only what changed.

    The file name carries the model and a key (the corpus hash), the content hash of each text
    does the rest: a changed chunker reuses every chunk it did not change.
    """

    def __init__(self, model_id: str, key: str, directory: Path = RESULTS_DIR) -> None:
        slug = "".join(c if c.isalnum() else "-" for c in model_id).strip("-")
        self.path = directory / f"embeddings-{slug}-{key[:16]}.npz"
        self.vectors: dict[str, np.ndarray] = {}
        self.dirty = False
        if self.path.is_file():
            with np.load(self.path, allow_pickle=False) as data:
                for h, v in zip(data["hashes"].tolist(), data["vectors"], strict=True):
                    self.vectors[str(h)] = v

    def missing(self, hashes: Iterable[str]) -> list[str]:
        return [h for h in dict.fromkeys(hashes) if h not in self.vectors]

    def put(self, hashes: Sequence[str], vectors: np.ndarray) -> None:
        for h, v in zip(hashes, vectors, strict=True):
            self.vectors[h] = np.asarray(v, dtype=np.float32)
        self.dirty = True

    def get(self, hashes: Sequence[str]) -> np.ndarray:
        return np.stack([self.vectors[h] for h in hashes]).astype(np.float32, copy=False)

    def save(self) -> None:
        if not self.dirty:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        hashes = sorted(self.vectors)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, hashes=np.array(hashes), vectors=np.stack([self.vectors[h] for h in hashes]))
        tmp.replace(self.path)
        self.dirty = False


def mrr_at_k(ranked: Sequence[str], judgements: Mapping[str, int], k: int) -> float:
    """1 / rank of the first relevant (grade > 0) document in the top k; 0 when none is."""
    for rank, doc in enumerate(ranked[:k], start=1):
        if judgements.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0
