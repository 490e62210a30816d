"""Records search/ returns to the surfaces."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

MatchType = Literal["semantic", "keyword", "both"]
SearchMode = Literal["chunks", "pages"]


@dataclass(frozen=True, slots=True)
class SearchHit:
    chunk_id: int
    text: str
    heading_path: tuple[str, ...]
    page_id: str
    title: str
    url: str
    breadcrumb: str
    space_key: str
    source_id: str
    labels: tuple[str, ...]
    page_type: str
    updated_at: datetime | None
    score: float  # the score the hits are ranked by (see search/ranking.py)
    match_type: MatchType
    snippet_html: str  # escaped page text with <mark> around matched terms: safe to render
    weak: bool = False  # only the embedding found it, and weakly: probably not an answer
    # pages mode: the page's other matching chunks, best first
    more_chunks: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class CodeHit:
    code_id: int
    language: str
    code: str
    line_count: int
    heading_path: tuple[str, ...]
    page_id: str
    title: str
    url: str
    breadcrumb: str
    space_key: str
    source_id: str
    score: float
