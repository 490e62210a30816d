"""Reciprocal rank fusion: pure, parametrized cases."""

from __future__ import annotations

import pytest

from confluence_rag.errors import InvalidInput
from confluence_rag.search.fusion import reciprocal_rank_fusion


def ranked(*ids: str) -> list[tuple[str, float]]:
    return [(i, 100.0 - n) for n, i in enumerate(ids)]


@pytest.mark.parametrize(
    ("lists", "k", "weights", "expected"),
    [
        # one list: order kept
        ([ranked("a", "b", "c")], 60, None, ["a", "b", "c"]),
        # agreement beats a single first place
        ([ranked("a", "b"), ranked("b", "c")], 60, None, ["b", "a", "c"]),
        # disjoint lists interleave by rank; ties go to the earlier list
        ([ranked("a", "b"), ranked("x", "y")], 60, None, ["a", "x", "b", "y"]),
        # a heavier second list wins ties and close calls
        ([ranked("a", "b"), ranked("x", "y")], 60, [1.0, 2.0], ["x", "y", "a", "b"]),
        # weight 0 ignores a list entirely
        ([ranked("a"), ranked("x", "a")], 60, [1.0, 0.0], ["a"]),
        # empty lists
        ([[], []], 60, None, []),
        ([[], ranked("q")], 60, None, ["q"]),
        # small k rewards the top rank more: a (1st, absent) vs b (2nd, 2nd)
        ([ranked("a", "b"), ranked("c", "b")], 1, None, ["b", "a", "c"]),
        ([ranked("a", "b"), ranked("c", "b")], 1000, None, ["b", "a", "c"]),
    ],
)
def test_fusion_order(
    lists: list[list[tuple[str, float]]],
    k: int,
    weights: list[float] | None,
    expected: list[str],
) -> None:
    fused = reciprocal_rank_fusion(lists, k=k, weights=weights)
    assert [f.id for f in fused] == expected


def test_scores_and_ranks_follow_the_formula() -> None:
    fused = reciprocal_rank_fusion([ranked("a", "b"), ranked("b")], k=60, weights=[1.0, 0.5])
    by_id = {f.id: f for f in fused}
    assert by_id["b"].score == pytest.approx(1 / 62 + 0.5 / 61)
    assert by_id["a"].score == pytest.approx(1 / 61)
    assert by_id["b"].ranks == (2, 1)
    assert by_id["a"].ranks == (1, None)
    assert by_id["a"].found_in(0) and not by_id["a"].found_in(1)


def test_input_scores_are_ignored_only_order_counts() -> None:
    odd_scores = [("a", -5.0), ("b", 1000.0)]
    assert [f.id for f in reciprocal_rank_fusion([odd_scores])] == ["a", "b"]


def test_a_repeat_within_a_list_counts_once_at_its_best_rank() -> None:
    fused = reciprocal_rank_fusion([[("a", 1.0), ("a", 0.9), ("b", 0.8)]], k=60)
    assert [(f.id, f.ranks) for f in fused] == [("a", (1,)), ("b", (2,))]
    assert fused[0].score == pytest.approx(1 / 61)


def test_limit_cuts_after_fusion() -> None:
    fused = reciprocal_rank_fusion([ranked("a", "b", "c"), ranked("c")], limit=2)
    assert [f.id for f in fused] == ["c", "a"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "at least 1"),
        ({"weights": [1.0]}, "need as many weights"),
        ({"weights": [1.0, -1.0]}, "0 or more"),
        ({"limit": -1}, "limit"),
    ],
)
def test_bad_parameters_are_clear_errors(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        reciprocal_rank_fusion([ranked("a"), ranked("b")], **kwargs)  # type: ignore[arg-type]
