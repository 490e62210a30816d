"""Records produced by content/: a converted page and its code blocks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class CodeBlock:
    language: str
    code: str
    line_count: int
    heading_path: tuple[str, ...] = ()
    title: str = ""  # the code macro's title (caption line above the fence), if any


@dataclass(frozen=True, slots=True)
class Document:
    """A page after conversion: the Page's fields that search needs, plus Markdown."""

    page_id: str
    space_key: str
    type: str
    title: str
    version: int
    status: str
    created_at: datetime | None
    updated_at: datetime | None
    author: str | None
    labels: tuple[str, ...]
    ancestors: tuple[tuple[str, str], ...]  # (id, title), root first
    web_url: str
    markdown: str
    breadcrumb: str  # "Space > Parent > Page"
    code_blocks: tuple[CodeBlock, ...] = field(default=())
