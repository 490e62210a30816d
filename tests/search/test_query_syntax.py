"""Query operators: the pure parser (``search/query_syntax.py``) and the service honouring them
over a real store."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confluence_rag.errors import InvalidInput
from confluence_rag.records import SearchFilters
from confluence_rag.search.query_syntax import parse_query
from confluence_rag.search.service import SearchService

pytestmark = pytest.mark.anyio


def test_every_operator() -> None:
    parsed = parse_query(
        'rollback "Argo  CD" -helm -"canary abort" title:runbook title:"failed deploy" '
        'space:ops label:Release type:Page author:"Mei Chen" after:2026-01-31 before:2026-06-01 '
        "error: https://x.y/z"
    )
    assert parsed.text == "rollback Argo CD runbook failed deploy error: https://x.y/z"
    assert parsed.phrases == ("argo cd",)
    assert parsed.excluded == ("helm", "canary abort")
    assert parsed.title_words == ("runbook", "failed", "deploy")
    assert parsed.spaces == ("ops",) and parsed.labels == ("Release",)
    assert parsed.types == ("page",) and parsed.authors == ("mei chen",)
    assert parsed.after == datetime(2026, 1, 31, tzinfo=UTC)
    assert parsed.before == datetime(2026, 6, 1, tzinfo=UTC)
    assert parsed.problems == () and parsed.has_operators


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("how do I roll back", "how do I roll back"),
        ('unbalanced "quote here', "unbalanced quote here"),
        ("a - b", "a - b"),
        ("retry -1 --verbose", "retry -1 --verbose"),
        ('empty "" quotes', "empty quotes"),
        ("-space:OPS deploy", "-space:OPS deploy"),
        ("ERROR: HAL-E2107 at 10:42", "ERROR: HAL-E2107 at 10:42"),
    ],
)
def test_what_is_not_an_operator_stays_text(raw: str, text: str) -> None:
    parsed = parse_query(raw)
    assert parsed.text == text and parsed.problems == ()
    assert not parsed.has_operators


def test_values_that_mean_nothing_are_problems_not_exceptions() -> None:
    parsed = parse_query("deploy type:wiki after:yesterday before:2026-13-01")
    assert parsed.text == "deploy"
    assert [problem.split(":")[0] for problem in parsed.problems] == ["type", "after", "before"]


@given(st.text(max_size=200))
def test_any_text_parses_and_keeps_its_plain_words(raw: str) -> None:
    parsed = parse_query(raw)
    plain = [word for word in raw.split() if word.isalnum()]
    assert all(word in parsed.text.split() for word in plain)


async def test_the_service_honours_phrases_exclusions_and_titles(service: SearchService) -> None:
    phrase = await service.search('"helm rollback"', mode="chunks")
    assert [hit.text for hit in phrase] == ["Rollback with helm rollback"]
    without = await service.search("helm -rollback", mode="chunks")
    assert without and all("rollback" not in hit.text.lower() for hit in without)
    titled = await service.search("keys title:api", mode="chunks")
    assert titled and {hit.title for hit in titled} == {"API keys"}
    by_grace = await service.search("keys vault helm author:grace")
    assert by_grace and {hit.title for hit in by_grace} == {"API keys"}
    assert "API keys" not in {hit.title for hit in await service.search("keys author:ada")}


async def test_the_service_narrows_by_space_type_and_dates(service: SearchService) -> None:
    ops = await service.search("restart space:ops")
    assert ops and {hit.space_key for hit in ops} == {"OPS"}
    assert ops[0].title == "Database runbook"
    blog = await service.search("dashboard type:blogpost")
    assert [hit.title for hit in blog] == ["Team news"]
    # page i was updated in month i of 2025
    words = "helm postgres vault dashboard"
    window = await service.search(f"{words} after:2025-02-15 before:2025-04-01")
    assert {hit.title for hit in window} == {"Team news"}
    # an operator and a filter that exclude each other: nothing, truly
    assert await service.search("restart space:OPS", SearchFilters(spaces=("DEV",))) == []


async def test_bad_operator_values_are_clear_errors(service: SearchService) -> None:
    with pytest.raises(InvalidInput, match="type: must be page or blogpost"):
        await service.search("deploy type:wiki")
    with pytest.raises(InvalidInput, match="no words to search for"):
        await service.search("space:OPS label:db")
