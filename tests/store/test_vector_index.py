"""The in-memory vector matrix: pure numpy, checked against brute force."""

from __future__ import annotations

import numpy as np
import pytest

from confluence_rag.store.vector_index import VectorIndex


def unit(rng: np.random.Generator, dim: int) -> np.ndarray:
    v = rng.standard_normal(dim).astype(np.float32)
    return v / np.linalg.norm(v)


def test_random_upserts_and_removals_match_a_brute_force_model() -> None:
    rng = np.random.default_rng(1)
    dim = 16
    index = VectorIndex(dim)
    model: dict[int, tuple[int, np.ndarray]] = {}
    for _ in range(3000):
        op = rng.integers(0, 10)
        chunk = int(rng.integers(0, 400))
        if op < 6:
            page = chunk // 10
            vector = unit(rng, dim)
            index.upsert([chunk], [page], vector[None, :])
            model[chunk] = (page, vector)
        elif op < 9:
            index.remove([chunk])
            model.pop(chunk, None)
        else:
            page = int(rng.integers(0, 40))
            index.remove_pages([page])
            model = {c: pv for c, pv in model.items() if pv[0] != page}
    assert len(index) == len(model)
    assert sorted(index.ids().tolist()) == sorted(model)
    query = unit(rng, dim)
    expected = sorted(((c, float(v @ query)) for c, (_, v) in model.items()), key=lambda t: -t[1])
    got = index.search(query, 25)
    assert [c for c, _ in got] == [c for c, _ in expected[:25]]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected[:25]], rtol=1e-5)
    allowed = np.array([1, 2, 3], dtype=np.int64)
    filtered = index.search(query, 1000, allowed)
    assert [c for c, _ in filtered] == [c for c, _ in expected if model[c][0] in (1, 2, 3)]


def test_vectors_are_normalised_and_growth_keeps_rows() -> None:
    index = VectorIndex(4)
    index.upsert(list(range(5000)), [0] * 5000, np.tile([3.0, 0, 0, 0], (5000, 1)))
    assert len(index) == 5000
    top = index.search(np.array([1.0, 0, 0, 0], dtype=np.float32), 3)
    assert [round(s, 5) for _, s in top] == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("limit", [0, -1])
def test_non_positive_limits_give_nothing(limit: int) -> None:
    index = VectorIndex(2)
    index.upsert([1], [1], np.array([[1.0, 0.0]]))
    assert index.search(np.array([1.0, 0.0]), limit) == []


def test_empty_index_and_empty_filter() -> None:
    index = VectorIndex(2)
    assert index.search(np.array([1.0, 0.0]), 5) == []
    index.upsert([1], [1], np.array([[1.0, 0.0]]))
    assert index.search(np.array([1.0, 0.0]), 5, np.array([], dtype=np.int64)) == []
    assert index.remove([99]) == 0 and index.remove_pages([]) == 0


def test_prefiltered_search_finds_every_stored_vector_through_writes_and_removals() -> None:
    """With the sign-code prefilter on from the first row and a pool of 3, a query equal to a
    stored vector has Hamming distance 0 to it, so it must come back first: this fails if any
    row's code is stale after an overwrite, a swap-remove or a growth."""
    rng = np.random.default_rng(7)
    dim = 40
    index = VectorIndex(dim, prefilter_min_rows=1, prefilter_pool=3)
    model: dict[int, np.ndarray] = {}
    for _ in range(4000):
        chunk = int(rng.integers(0, 1500))
        if rng.integers(0, 3):
            vector = unit(rng, dim)
            index.upsert([chunk], [chunk // 7], vector[None, :])
            model[chunk] = vector
        else:
            index.remove([chunk])
            model.pop(chunk, None)
    for chunk, vector in model.items():
        assert index.search(vector, 1)[0][0] == chunk


def test_prefiltered_search_returns_exact_scores_and_respects_filters() -> None:
    rng = np.random.default_rng(11)
    dim = 64
    vectors = rng.standard_normal((3000, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pages = np.arange(3000) // 10
    index = VectorIndex(dim, prefilter_min_rows=100, prefilter_pool=300)
    index.upsert(list(range(3000)), pages.tolist(), vectors)
    query = unit(rng, dim)
    exact = vectors @ query
    got = index.search(query, 10)
    np.testing.assert_allclose([s for _, s in got], exact[[c for c, _ in got]], rtol=1e-5)
    assert [s for _, s in got] == sorted((s for _, s in got), reverse=True)
    # Approximate pool, but the best exact hit is found on random data at this pool size.
    assert got[0][0] == int(np.argmax(exact))
    allowed = np.arange(0, 300, 2)  # half the pages: still above the prefilter threshold
    filtered = index.search(query, 10, allowed)
    assert filtered and all(pages[c] % 2 == 0 for c, _ in filtered)
    in_allowed = np.flatnonzero(pages % 2 == 0)
    assert filtered[0][0] == int(in_allowed[np.argmax(exact[in_allowed])])
