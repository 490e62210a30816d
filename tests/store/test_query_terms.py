"""User text -> FTS terms: pure cases."""

from __future__ import annotations

import pytest

from confluence_rag.store.query_terms import MAX_TERMS, fts5_match, query_terms


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("How do I restart Postgres?", ["how", "do", "i", "restart", "postgres"]),
        ("the and of", ["the", "and", "of"]),  # only stop words: keep them
        ("the cat the CAT", ["cat"]),
        ('"quoted" AND (x OR y*)', ["quoted", "x", "y"]),
        ("snake_case-name", ["snake", "case", "name"]),
        ("部署 指南", ["部署", "指南"]),
        ("Ünïcode café", ["ünïcode", "café"]),
        ("", []),
        ("!!! ???", []),
    ],
)
def test_query_terms(query: str, terms: list[str]) -> None:
    assert query_terms(query) == terms


def test_terms_are_capped() -> None:
    assert len(query_terms(" ".join(f"w{i}" for i in range(100)))) == MAX_TERMS


def test_match_expression_quotes_every_term() -> None:
    assert fts5_match(["a", "b"]) == '"a" OR "b"'
    assert fts5_match([]) == ""
