"""The structured content each MCP tool returns (its published ``outputSchema``).

These are wire schemas for assistants, separate from the store's records: they name things the
way Archon's tools did (``source_id``, ``page_id``, ``content``) so prompts written for Archon
keep working, and they never carry a credential or a private row id.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class SpaceInfo(BaseModel):
    key: str = Field(description="Confluence space key, e.g. DEV.")
    name: str = Field(description="Space name as Confluence shows it.")


class SourceInfo(BaseModel):
    source_id: str = Field(description="Pass this as source_id to the other tools.")
    title: str
    site_url: str
    flavour: str = Field(description="cloud or datacenter.")
    spaces: list[SpaceInfo]
    page_count: int = Field(description="Live pages in the index.")
    chunk_count: int = Field(description="Searchable chunks in the index.")
    last_sync_at: str | None = Field(description="ISO 8601 time of the last finished crawl/sync.")
    sync_status: str = Field(description="active, syncing, error or paused.")
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
    heading: str = Field(description="Heading path of the matching section ('' at the top).")
    space: str
    source_id: str
    labels: list[str]
    updated_at: str | None
    content: str = Field(description="The matching chunk's text (Markdown).")
    more_content: list[str] = Field(
        default_factory=list,
        description="pages mode: the page's other matching chunks, best first.",
    )
    score: float
    match_type: str = Field(description="keyword, semantic or both.")


class SearchResult(BaseModel):
    query: str
    return_mode: str
    count: int
    results: list[KnowledgeHit]


class CodeExample(BaseModel):
    page_id: str
    title: str
    url: str
    breadcrumb: str
    heading: str
    space: str
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
    page_id: str
    title: str
    url: str
    space: str
    breadcrumb: str
    type: str = Field(description="page or blogpost.")
    version: int
    labels: list[str]
    updated_at: str | None
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
    page_id: str
    title: str
    url: str
    space: str
    source_id: str
    breadcrumb: str
    type: str
    version: int
    labels: list[str]
    author: str | None
    updated_at: str | None
    is_deleted: bool = Field(description="True if the page was deleted in Confluence since.")
    content: str = Field(description="The page's Markdown from offset (at most max_chars).")
    offset: int
    returned_chars: int
    total_chars: int
    truncated: bool = Field(description="True if more content follows; see next_offset.")
    next_offset: int | None = Field(description="Pass as offset to read the rest; null at end.")


class SyncStarted(BaseModel):
    progress_id: str = Field(description="Pass to rag_get_progress.")
    source_id: str
    kind: str
    status: str
    already_running: bool = Field(
        description="True if a crawl/sync of this source was already queued or running: "
        "progress_id is that job's."
    )


class Progress(BaseModel):
    progress_id: str
    source_id: str
    kind: str
    status: str = Field(description="queued, running, completed, failed or cancelled.")
    done: bool = Field(description="True once the job has finished (any outcome).")
    stage: str
    percent: float
    counters: dict[str, int]
    error: str | None
    log: list[str] = Field(description="The most recent log lines, oldest first.")
    created_at: str | None
    started_at: str | None
    finished_at: str | None
