"""One ranking for every search: fused retriever ranks plus what a person means. Pure.

    ranked = rank_chunks(query, fused, rows, cosines, weak_below=0.3)

The score of a chunk is the score it is ranked by and the score shown:

    score = fused RRF score (< 0.04 with k=60)
          + TITLE_BONUS   when the query is the page's title (case, punctuation and spacing aside)
          + PHRASE_BONUS  when the chunk holds the whole query verbatim (see ``holds_phrase``)

RRF only sees ranks: a page whose title is the query, or a chunk holding a pasted identifier or
log line verbatim, can sit below chunks that are merely similar in both lists. The bonuses are
tiers above any fused score, so such hits come first and stay in score order. Ties go to the
smaller chunk id, so one query gives one order, whatever ``limit`` cuts it to.

``weak`` marks a hit nothing but the embedding found, at a cosine similarity below
``weak_below``: what a nonsense query returns (the nearest vectors to anything). A hit the
keyword index found, or that matches title or phrase, is never weak.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from confluence_rag.records import ChunkRow
from confluence_rag.search.fusion import Fused
from confluence_rag.search.models import MatchType
from confluence_rag.search.query_syntax import words_pattern
from confluence_rag.store.query_terms import STOPWORDS, query_terms

TITLE_BONUS = 1.0
PHRASE_BONUS = 0.5

_NOT_WORD = re.compile(r"[\W_]+")
_SPACES = re.compile(r"\s+")
_CONNECTED = re.compile(r"\w[_.\-/:]\w")


@dataclass(frozen=True, slots=True)
class RankedChunk:
    row: ChunkRow
    score: float
    match_type: MatchType
    weak: bool


def normalised_title(text: str) -> str:
    """Case, punctuation and spacing aside: "dispatch-api: Loads endpoints" ->
    "dispatch api loads endpoints"."""
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


def phrase_pattern(query: str) -> re.Pattern[str] | None:
    """What ``holds_phrase`` looks for, or None when verbatim presence says little: one plain
    word (or one word among stop words), or under 4 characters. Multi-word queries and
    connected tokens (``a_b``, ``a.b``, ``a-b``, ``a/b``) qualify."""
    needle = _SPACES.sub(" ", query.strip().lower())
    meaningful = [t for t in query_terms(query) if t not in STOPWORDS]
    if len(needle) < 4 or (len(meaningful) < 2 and not _CONNECTED.search(needle)):
        return None
    return words_pattern(needle, whole_words=False)


def match_type(fused: Fused[int]) -> MatchType:
    keyword, semantic = fused.found_in(0), fused.found_in(1)
    if keyword and semantic:
        return "both"
    return "keyword" if keyword else "semantic"


def rank_chunks(
    query: str,
    fused: Sequence[Fused[int]],
    rows: Mapping[int, ChunkRow],
    cosines: Mapping[int, float],
    weak_below: float,
) -> list[RankedChunk]:
    """Every fused candidate that has a row, scored as above, best first."""
    title = normalised_title(query)
    phrase = phrase_pattern(query)
    ranked = []
    for item in fused:
        row = rows.get(item.id)
        if row is None:
            continue  # deleted since the candidates were read
        titled = bool(title) and normalised_title(row.title) == title
        verbatim = phrase is not None and phrase.search(row.text) is not None
        score = item.score + TITLE_BONUS * titled + PHRASE_BONUS * verbatim
        kind = match_type(item)
        weak = (
            kind == "semantic"
            and not (titled or verbatim)
            and cosines.get(item.id, 0.0) < weak_below
        )
        ranked.append(RankedChunk(row, score, kind, weak))
    ranked.sort(key=lambda hit: (-hit.score, hit.row.chunk_id))
    return ranked


@dataclass(frozen=True, slots=True)
class RankedPage:
    best: RankedChunk
    others: tuple[ChunkRow, ...]  # the page's other matching chunks, best first
    match_type: MatchType


def group_by_page(ranked: Sequence[RankedChunk], limit: int) -> list[RankedPage]:
    """One entry per page, in the order of its best chunk (``ranked`` is best first)."""
    pages: dict[str, list[RankedChunk]] = {}
    for hit in ranked:
        group = pages.get(hit.row.page_key)
        if group is None:
            if len(pages) == limit:
                continue  # a page past the limit: only known pages collect more chunks
            group = pages[hit.row.page_key] = []
        group.append(hit)
    grouped = []
    for group in pages.values():
        kinds = {hit.match_type for hit in group}
        kind: MatchType = "both" if "both" in kinds or len(kinds) > 1 else group[0].match_type
        grouped.append(RankedPage(group[0], tuple(hit.row for hit in group[1:]), kind))
    return grouped
