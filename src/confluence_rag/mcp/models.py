"""The structured content each MCP tool returns (its published ``outputSchema``).

These are wire schemas for assistants, separate from the store's records: they name things the
way Archon's tools did (``source_id``, ``page_id``, ``content``) so prompts written for Archon
keep working, and they never carry a credential or a private row id.

``formatting.py`` builds them with ``model_validate(record, from_attributes=True)``: where a
field's name differs from the record's, ``AliasChoices(own name, record's name)`` reads either
(the published schema shows the first, the tool's own name); where the value differs in form
(a heading path joined, a time as ISO text), a ``mode="before"`` validator converts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, BeforeValidator, Field

from confluence_rag.records import JobStatus, SyncStatus
from confluence_rag.search.models import MatchType

Flavour = Literal["cloud", "datacenter"]
PageType = Literal["page", "blogpost"]
JobKind = Literal["crawl", "sync"]


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _heading(value: Any) -> Any:
    if isinstance(value, str):
        return value
    return " > ".join(value) if isinstance(value, Sequence) else value


def _from(*names: str) -> Any:
    """Read the field under its own name or, from a record, under the record's name."""
    return AliasChoices(*names)


IsoTime = Annotated[str | None, BeforeValidator(_iso)]
HeadingText = Annotated[str, BeforeValidator(_heading)]


class SpaceInfo(BaseModel):
    key: str = Field(description="Confluence space key, e.g. DEV.")
    name: str = Field(description="Space name as Confluence shows it.")


class SourceInfo(BaseModel):
    source_id: str = Field(
        validation_alias=_from("source_id", "id"),
        description="Pass this as source_id to the other tools.",
    )
    title: str
    site_url: str
    flavour: Flavour
    spaces: list[SpaceInfo]
    page_count: int = Field(description="Live pages in the index.")
    chunk_count: int = Field(description="Searchable chunks in the index.")
    last_sync_at: IsoTime = Field(description="ISO 8601 time of the last finished crawl/sync.")
    sync_status: SyncStatus
    sync_error: str | None = None
    knowledge_type: str
    tags: list[str]


class SourcesResult(BaseModel):
    count: int
    sources: list[SourceInfo]


class KnowledgeHit(BaseModel):
    page_id: str = Field(description="Stable page key; pass it to rag_read_full_page.")
    title: str
    url: str = Field(description="Link to the page in Confluence.")
    breadcrumb: str = Field(description="Space > parent pages > page.")
    heading: HeadingText = Field(
        validation_alias=_from("heading", "heading_path"),
        description="Heading path of the matching section ('' at the top).",
    )
    space: str = Field(validation_alias=_from("space", "space_key"))
    source_id: str
    labels: list[str]
    updated_at: IsoTime
    content: str = Field(
        validation_alias=_from("content", "text"),
        description="The matching chunk's text (Markdown).",
    )
    more_content: list[str] = Field(
        default_factory=list,
        validation_alias=_from("more_content", "more_chunks"),
        description="pages mode: the page's other matching chunks, best first.",
    )
    score: float
    match_type: MatchType
    weak: bool = Field(
        description="Only similar in meaning, and not closely: probably not an answer."
    )


class SearchResult(BaseModel):
    query: str
    return_mode: Literal["chunks", "pages"]
    count: int
    results: list[KnowledgeHit]


class CodeExample(BaseModel):
    page_id: str
    title: str
    url: str
    breadcrumb: str
    heading: HeadingText = Field(validation_alias=_from("heading", "heading_path"))
    space: str = Field(validation_alias=_from("space", "space_key"))
    source_id: str
    language: str
    code: str
    line_count: int
    score: float


class CodeSearchResult(BaseModel):
    query: str
    language: str | None
    count: int
    results: list[CodeExample]


class PageSummary(BaseModel):
    page_id: str = Field(validation_alias=_from("page_id", "key"))
    title: str
    url: str
    space: str = Field(validation_alias=_from("space", "space_key"))
    breadcrumb: str
    type: PageType
    version: int
    labels: list[str]
    updated_at: IsoTime
    chunk_count: int
    code_count: int


class PageList(BaseModel):
    source_id: str
    space: str | None
    total: int = Field(description="Live pages matching (all of them, not just this batch).")
    offset: int
    limit: int
    count: int
    next_offset: int | None = Field(description="Pass as offset for the next batch; null at end.")
    pages: list[PageSummary]


class FullPage(BaseModel):
    page_id: str = Field(validation_alias=_from("page_id", "key"))
    title: str
    url: str
    space: str = Field(validation_alias=_from("space", "space_key"))
    source_id: str
    breadcrumb: str
    type: PageType
    version: int
    labels: list[str]
    author: str | None
    updated_at: IsoTime
    is_deleted: bool = Field(description="True if the page was deleted in Confluence since.")
    content: str = Field(description="The page's Markdown from offset (at most max_chars).")
    offset: int
    returned_chars: int
    total_chars: int
    truncated: bool = Field(description="True if more content follows; see next_offset.")
    next_offset: int | None = Field(description="Pass as offset to read the rest; null at end.")


class SyncStarted(BaseModel):
    progress_id: str = Field(
        validation_alias=_from("progress_id", "id"), description="Pass to rag_get_progress."
    )
    source_id: str
    kind: JobKind
    status: JobStatus
    already_running: bool = Field(
        description="True if a crawl/sync of this source was already queued or running: "
        "progress_id is that job's."
    )


class Progress(BaseModel):
    progress_id: str = Field(validation_alias=_from("progress_id", "id"))
    source_id: str
    kind: JobKind
    status: JobStatus
    done: bool = Field(description="True once the job has finished (any outcome).")
    stage: str
    percent: float
    counters: dict[str, int]
    error: str | None
    log: list[str] = Field(description="The most recent log lines, oldest first.")
    created_at: IsoTime
    started_at: IsoTime
    finished_at: IsoTime
