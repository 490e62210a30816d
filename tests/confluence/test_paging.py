"""Which URL comes next: links followed as given, offsets checked, limits halved and regrown."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from confluence_rag.confluence.paging import (
    GROW_AFTER_SUCCESSES,
    LimitGovernor,
    int_param,
    is_cursor_link,
    next_page_url,
    query_param,
    with_params,
)

BASE = "https://h.example/wiki/rest/api/content/search"


def params(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_with_params_replaces_in_place_and_never_duplicates() -> None:
    url = f"{BASE}?cql=space%3DDEV&expand=body.storage%2Cversion&limit=50&start=50"
    out = with_params(url, limit=25, start=75)
    assert params(out) == [
        ("cql", "space=DEV"),
        ("expand", "body.storage,version"),
        ("limit", "25"),
        ("start", "75"),
    ]
    # a duplicated parameter collapses to one
    assert params(with_params(f"{BASE}?limit=1&limit=2&x=1", limit=9)) == [
        ("limit", "9"),
        ("x", "1"),
    ]
    # an absent one is appended
    assert params(with_params(f"{BASE}?cql=a", start=3)) == [("cql", "a"), ("start", "3")]
    assert urlsplit(out).path == urlsplit(url).path


def test_query_helpers() -> None:
    url = f"{BASE}?limit=abc&start=10&cursor="
    assert query_param(url, "start") == "10"
    assert int_param(url, "start") == 10
    assert int_param(url, "limit") is None
    assert int_param(url, "missing") is None
    assert is_cursor_link(url)
    assert not is_cursor_link(f"{BASE}?start=10")


def test_end_of_walk() -> None:
    assert next_page_url(sent_url=BASE, next_url=None, received=25).url is None
    # an empty page ends the walk even if the server offers a next link
    assert next_page_url(sent_url=BASE, next_url=f"{BASE}?start=25", received=0).url is None


def test_short_page_with_next_continues() -> None:
    # asked 1000, server silently capped at 50: the short page is not the end
    decision = next_page_url(
        sent_url=f"{BASE}?cql=x&limit=1000&expand=version",
        next_url=f"{BASE}?cql=x&limit=50&expand=version&start=50",
        received=50,
    )
    assert decision.url == f"{BASE}?cql=x&limit=50&expand=version&start=50"
    assert decision.corrected_start is None


@pytest.mark.parametrize(
    ("sent_start", "received", "server_start", "expected"),
    [
        (0, 50, 1000, 50),  # server computed start from the requested limit: would skip 950
        (100, 50, 100, 150),  # server repeated the same start: would re-read
        (100, 50, 125, 150),  # off by some
        (100, 50, 150, None),  # right: untouched
    ],
)
def test_wrong_offsets_are_recomputed_from_what_was_received(
    sent_start: int, received: int, server_start: int, expected: int | None
) -> None:
    sent = f"{BASE}?cql=x&limit=1000&start={sent_start}"
    server_next = f"{BASE}?cql=x&limit=1000&start={server_start}"
    decision = next_page_url(sent_url=sent, next_url=server_next, received=received)
    assert decision.corrected_start == expected
    assert int_param(decision.url or "", "start") == sent_start + received
    # nothing but start changed, and nothing was added
    assert [k for k, _ in params(decision.url or "")] == ["cql", "limit", "start"]


def test_cursor_links_are_left_alone() -> None:
    server_next = f"{BASE}?next=true&cursor=abc&limit=25&start=999&cql=x"
    decision = next_page_url(sent_url=f"{BASE}?cql=x", next_url=server_next, received=25)
    assert decision.url == server_next
    assert decision.corrected_start is None


def test_forced_limit_replaces_the_link_limit() -> None:
    decision = next_page_url(
        sent_url=f"{BASE}?limit=12&start=0",
        next_url=f"{BASE}?limit=12&start=12&expand=body.storage",
        received=12,
        limit=24,
    )
    assert params(decision.url or "") == [
        ("limit", "24"),
        ("start", "12"),
        ("expand", "body.storage"),
    ]


def test_governor_halves_from_the_observed_cap_down_to_one() -> None:
    governor = LimitGovernor(1000)
    governor.note_response(sent_limit=1000, server_limit=50)  # a silent cap
    assert governor.ceiling == 50
    halvings = []
    sent = 1000
    while (smaller := governor.shrink(sent)) is not None and len(halvings) < 20:
        halvings.append(smaller)
        sent = smaller
    # starts from the cap (not from the 1000 the server never honoured) and stops at 1
    assert halvings == [25, 12, 6, 3, 1]
    assert governor.shrink(1) is None
    assert governor.limit_for_next() == 1


def test_governor_leaves_links_alone_until_it_has_shrunk() -> None:
    governor = LimitGovernor(50)
    for _ in range(30):
        governor.note_response(50, 50)
    assert governor.limit_for_next() is None


def test_governor_probes_back_up_after_a_run_of_successes() -> None:
    governor = LimitGovernor(50)
    assert governor.shrink(50) == 25
    for _ in range(GROW_AFTER_SUCCESSES - 1):
        governor.note_response(25, 25)
    assert governor.limit_for_next() == 25
    governor.note_response(25, 25)
    assert governor.limit_for_next() == 50  # probed back up, never above what was asked
    for _ in range(3 * GROW_AFTER_SUCCESSES):
        governor.note_response(50, 50)
    assert governor.limit_for_next() == 50
    assert governor.reductions == 1


def test_failed_probes_are_made_ever_more_rarely() -> None:
    # a gateway that can never serve more than 12 per page: every probe to 24 fails
    governor = LimitGovernor(50)
    assert governor.shrink(50) == 25
    assert governor.shrink(25) == 12
    waits = []
    for _ in range(5):
        successes = 0
        while governor.limit_for_next() == 12:
            governor.note_response(12, 12)
            successes += 1
        waits.append(successes)
        assert governor.limit_for_next() == 24
        assert governor.shrink(24) == 12  # the probe timed out
    assert waits == [GROW_AFTER_SUCCESSES * 2**n for n in range(5)]


def test_a_successful_probe_resets_the_wait() -> None:
    governor = LimitGovernor(50)
    governor.shrink(50)  # 25
    for _ in range(GROW_AFTER_SUCCESSES):
        governor.note_response(25, 25)
    assert governor.limit_for_next() == 50
    governor.shrink(50)  # the probe failed: wait twice as long next time
    assert governor.grow_after == 2 * GROW_AFTER_SUCCESSES
    for _ in range(2 * GROW_AFTER_SUCCESSES):
        governor.note_response(25, 25)
    governor.note_response(50, 50)  # this probe went through
    assert governor.grow_after == GROW_AFTER_SUCCESSES
