"""Sign codes and Hamming distances, checked bit by bit against plain Python."""

from __future__ import annotations

import numpy as np
import pytest

from confluence_rag.store.sign_codes import hamming, nearest, sign_codes, word_count


@pytest.mark.parametrize("dimension", [1, 63, 64, 65, 384])
def test_hamming_counts_the_dimensions_whose_signs_differ(dimension: int) -> None:
    rng = np.random.default_rng(dimension)
    vectors = rng.standard_normal((50, dimension)).astype(np.float32)
    codes = sign_codes(vectors)
    assert codes.shape == (word_count(dimension), 50) and codes.dtype == np.uint64
    query = vectors[7]
    distance = hamming(codes, sign_codes(query[None, :])[:, 0], 50)
    expected = [int(((v > 0) != (query > 0)).sum()) for v in vectors]
    assert distance.tolist() == expected
    assert distance[7] == 0


def test_hamming_reads_only_the_first_rows() -> None:
    codes = sign_codes(np.ones((10, 8), dtype=np.float32))
    assert hamming(codes, np.zeros(1, dtype=np.uint64), 4).tolist() == [8, 8, 8, 8]


@pytest.mark.parametrize(
    ("distance", "count", "expected"),
    [
        ([5, 1, 3, 1, 9], 2, [1, 3]),
        ([5, 1, 3, 1, 9], 3, [1, 2, 3]),
        ([2, 2, 2, 0], 2, [0, 1, 2, 3]),  # ties with the last one chosen all come along
        ([4, 4], 5, [0, 1]),
        ([], 3, []),
    ],
)
def test_nearest_keeps_at_least_count_smallest_with_ties(
    distance: list[int], count: int, expected: list[int]
) -> None:
    got = nearest(np.array(distance, dtype=np.uint16), count)
    assert sorted(got.tolist()) == expected
