"""Reciprocal rank fusion (RRF): several ranked lists in, one ranked list out. Pure.

    score(d) = sum over lists i containing d of  weight_i / (k + rank_i(d))      (rank from 1)

RRF needs no score calibration between retrievers (bm25 and cosine live on different scales),
which is why hybrid search uses it. ``k`` damps the advantage of the very first ranks (60 is the
value of the original paper and works well broadly); weights tilt the fusion toward a retriever.

Each input list is taken in the order given (best first); scores in it are ignored, as RRF
prescribes. An id repeated within one list counts once, at its best rank. A list with weight 0
is ignored entirely (it neither adds score nor membership).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from confluence_rag.errors import InvalidInput

K = TypeVar("K", bound=Hashable)

DEFAULT_K = 60


@dataclass(frozen=True, slots=True)
class Fused(Generic[K]):
    id: K
    score: float
    ranks: tuple[int | None, ...]  # 1-based rank in each input list; None where absent

    def found_in(self, index: int) -> bool:
        return self.ranks[index] is not None


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[tuple[K, float]]],
    *,
    k: int = DEFAULT_K,
    weights: Sequence[float] | None = None,
    limit: int | None = None,
) -> list[Fused[K]]:
    """Fuse ranked ``(id, score)`` lists; best first.

    Ties (equal fused score) go to the id with the better best rank, then to the one seen first
    (earlier list, then earlier position), so the output is deterministic.
    """
    if k < 1:
        raise InvalidInput(f"the RRF constant k must be at least 1, got {k}")
    if weights is None:
        weights = [1.0] * len(rankings)
    if len(weights) != len(rankings):
        raise InvalidInput(f"{len(rankings)} ranked lists need as many weights, got {len(weights)}")
    if any(w < 0 for w in weights):
        raise InvalidInput(f"RRF weights must be 0 or more, got {list(weights)}")
    if limit is not None and limit < 0:
        raise InvalidInput(f"limit must be 0 or more, got {limit}")

    n = len(rankings)
    scores: dict[K, float] = {}
    ranks: dict[K, list[int | None]] = {}
    first_seen: dict[K, int] = {}
    for index, (ranking, weight) in enumerate(zip(rankings, weights, strict=True)):
        if weight == 0:
            continue
        rank = 0
        for item_id, _score in ranking:
            positions = ranks.get(item_id)
            if positions is not None and positions[index] is not None:
                continue  # a repeat within this list: its best rank already counted
            rank += 1
            if positions is None:
                positions = [None] * n
                ranks[item_id] = positions
                scores[item_id] = 0.0
                first_seen[item_id] = len(first_seen)
            positions[index] = rank
            scores[item_id] += weight / (k + rank)

    def order(item_id: K) -> tuple[float, int, int]:
        best = min(r for r in ranks[item_id] if r is not None)
        return (-scores[item_id], best, first_seen[item_id])

    fused = [Fused(i, scores[i], tuple(ranks[i])) for i in sorted(scores, key=order)]
    return fused if limit is None else fused[:limit]
