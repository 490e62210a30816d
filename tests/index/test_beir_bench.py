"""The retrieval benchmark's loader, metrics and embedding cache (bench/beir.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from bench.beir import (
    EmbeddingCache,
    best_chunk_ranking,
    evaluate,
    load_collection,
    ndcg_at_k,
    recall_at_k,
)


@pytest.mark.parametrize(
    ("ranked", "judgements", "expected"),
    [
        (["a", "b"], {"a": 1}, 1.0),
        (["x", "a"], {"a": 1}, 1 / math.log2(3)),
        (["x", "y"], {"a": 1}, 0.0),
        ([], {"a": 1}, 0.0),
        # Two relevant, one found at rank 1: DCG 1, IDCG 1 + 1/log2(3).
        (["a", "x"], {"a": 1, "b": 1}, 1 / (1 + 1 / math.log2(3))),
        # Graded, linear gains (trec_eval): found in the wrong order.
        (["b", "a"], {"a": 2, "b": 1}, (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3))),
        # Judged-irrelevant (grade 0) documents gain nothing.
        (["z", "a"], {"a": 1, "z": 0}, 1 / math.log2(3)),
    ],
)
def test_ndcg(ranked: list[str], judgements: dict[str, int], expected: float) -> None:
    assert ndcg_at_k(ranked, judgements, 10) == pytest.approx(expected)


def test_ndcg_is_cut_at_k() -> None:
    ranked = [f"d{i}" for i in range(20)]
    assert ndcg_at_k(ranked, {"d10": 1}, 10) == 0.0
    assert ndcg_at_k(ranked, {"d9": 1}, 10) == pytest.approx(1 / math.log2(11))


def test_recall() -> None:
    judgements = {"a": 1, "b": 1, "c": 0}
    assert recall_at_k(["a", "c", "x"], judgements, 100) == 0.5
    assert recall_at_k(["x", "a"], judgements, 1) == 0.0
    assert recall_at_k(["b", "a"], judgements, 2) == 1.0


def test_evaluate_counts_every_judged_query() -> None:
    qrels = {"q1": {"a": 1}, "q2": {"b": 1}, "q3": {"c": 0}}
    scores = evaluate({"q1": ["a"]}, qrels)  # q2 retrieved nothing; q3 has nothing relevant
    assert scores == {"ndcg@10": 0.5, "recall@100": 0.5, "queries": 2.0}


def test_documents_rank_by_their_best_chunk() -> None:
    hits = [("d1", 0.2), ("d2", 0.5), ("d1", 0.9), ("d3", 0.5)]
    assert best_chunk_ranking(hits) == ["d1", "d2", "d3"]


def test_a_small_collection_loads(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        json.dumps({"_id": "1", "title": "T", "text": "body"})
        + "\n\n"
        + json.dumps({"_id": 2, "text": "no title"})
        + "\n"
    )
    (tmp_path / "queries.jsonl").write_text(json.dumps({"_id": "q", "text": "what"}) + "\n")
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\t1\t1\nq\t2\t0\n")
    collection = load_collection(tmp_path)
    assert [(d.doc_id, d.title, d.text) for d in collection.corpus] == [
        ("1", "T", "body"),
        ("2", "", "no title"),
    ]
    assert collection.queries == {"q": "what"}
    assert collection.qrels("test") == {"q": {"1": 1, "2": 0}}
    assert len(collection.corpus_hash()) == 64


def test_scifact_is_complete(shared_data: Path) -> None:
    collection = load_collection(shared_data / "eval" / "scifact")
    assert len(collection.corpus) == 5183
    assert len(collection.queries) == 1109
    test, train = collection.qrels("test"), collection.qrels("train")
    assert len(test) == 300 and sum(len(d) for d in test.values()) == 339
    assert sum(len(d) for d in train.values()) == 919
    assert not set(test) & set(train)


def test_the_embedding_cache_round_trips(tmp_path: Path) -> None:
    cache = EmbeddingCache("sentence-transformers/all-MiniLM-L6-v2", "ab" * 32, tmp_path)
    assert (
        cache.path.name == "embeddings-sentence-transformers-all-MiniLM-L6-v2-abababababababab.npz"
    )
    assert cache.missing(["c1:x", "c1:y", "c1:x"]) == ["c1:x", "c1:y"]
    vectors = np.arange(6, dtype=np.float32).reshape(2, 3)
    cache.put(["c1:x", "c1:y"], vectors)
    cache.save()
    again = EmbeddingCache("sentence-transformers/all-MiniLM-L6-v2", "ab" * 32, tmp_path)
    assert again.missing(["c1:x", "c1:y", "c1:z"]) == ["c1:z"]
    np.testing.assert_array_equal(again.get(["c1:y", "c1:x"]), vectors[::-1])
    assert again.get(["c1:x"]).dtype == np.float32
