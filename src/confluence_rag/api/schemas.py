"""Request and response models of the HTTP API, kept apart from the store's records.

A response model lists exactly what a client may see: no credentials, no checkpoints, no
internal ids of other layers. Building one from a record is an explicit function here, so a new
column in the store never leaks out by accident. Field names follow the seed API where it named
them (``source_id``, ``progress_id``, ``last_sync_at``, ``sync_status``, ``total_pages``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from confluence_rag.records import JobRecord, PageRecord, SearchFilters, SourceRecord
from confluence_rag.search.models import CodeHit, SearchHit

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 100
MAX_FILTER_VALUES = 50

PageType = Literal["page", "blogpost"]
PAGE_TYPES: tuple[PageType, ...] = ("page", "blogpost")


class _Request(BaseModel):
    # A misspelt field is an error, not a silently ignored option.
    model_config = ConfigDict(extra="forbid")


# --- sources ------------------------------------------------------------------------------------
class AddSourceRequest(_Request):
    confluence_url: str = Field(
        min_length=1,
        max_length=2048,
        description="Site URL, e.g. https://example.atlassian.net or https://wiki.example.com",
    )
    user_email: str | None = Field(
        default=None, max_length=320, description="Account email (Cloud; not needed for DC)."
    )
    api_token: SecretStr = Field(
        min_length=1,
        max_length=4096,
        description="Cloud API token (with user_email) or Data Center personal access token.",
    )
    space_key: str | None = Field(default=None, max_length=255, description="One space key.")
    space_keys: list[str] = Field(
        default_factory=list, max_length=MAX_FILTER_VALUES, description="Several space keys."
    )
    flavour: Literal["cloud", "datacenter"] | None = Field(
        default=None, description="Default: cloud for *.atlassian.net hosts, else datacenter."
    )
    knowledge_type: str = Field(default="technical", max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    page_types: list[PageType] = Field(default_factory=lambda: list(PAGE_TYPES), min_length=1)
    max_pages: int | None = Field(default=None, ge=1, description="Stop after N pages (tests).")
    sync_frequency_hours: float | None = Field(
        default=None, ge=0, description="Automatic sync period; 0 = manual only."
    )
    start_crawl: bool = Field(default=True, description="Queue the first crawl at once.")


class AddSourceResponse(BaseModel):
    source_id: str
    progress_id: str | None
    status: str


class UpdateSourceRequest(_Request):
    sync_frequency_hours: float | None = Field(default=None, ge=0)
    paused: bool | None = None

    def changes(self) -> dict[str, Any]:
        return {name: value for name, value in self.model_dump().items() if value is not None}


class SourceOut(BaseModel):
    source_id: str
    title: str
    site: str
    flavour: str
    spaces: list[str]
    space_names: dict[str, str]
    knowledge_type: str
    tags: list[str]
    page_types: list[str]
    max_pages: int | None
    status: str = Field(
        description="crawling / syncing / queued while a job runs, else paused or sync_status"
    )
    last_sync_at: datetime | None
    sync_status: str | None
    sync_error: str | None
    total_pages: int = Field(description="Live (not deleted) pages stored.")
    total_chunks: int
    sync_frequency_hours: float
    paused: bool
    next_sync_at: datetime | None
    progress_id: str | None = Field(description="The running or queued job, if any.")
    created_at: datetime | None


class SourceList(BaseModel):
    sources: list[SourceOut]
    count: int


class SyncResponse(BaseModel):
    source_id: str
    progress_id: str
    status: str


class DeleteResponse(BaseModel):
    source_id: str
    deleted: bool


def source_title(record: SourceRecord) -> str:
    if record.title:
        return record.title
    names = dict(record.space_names or {})
    parts = [f"{names[key]} ({key})" if names.get(key) else key for key in record.space_keys]
    return ", ".join(parts)


def next_sync_at(record: SourceRecord) -> datetime | None:
    """When the scheduler syncs next, if knowable: never for a paused or manual-only source."""
    frequency = record.sync_frequency_hours or 0
    if record.paused or frequency <= 0:
        return None
    last = record.last_sync_at
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return last + timedelta(hours=frequency)


def source_out(record: SourceRecord, *, active_job: JobRecord | None = None) -> SourceOut:
    if active_job is not None:
        status = "queued" if active_job.status == "queued" else _running_word(active_job.kind)
    else:
        status = "paused" if record.paused else (record.sync_status or "new")
    return SourceOut(
        source_id=record.id,
        title=source_title(record),
        site=record.site_url,
        flavour=record.flavour,
        spaces=list(record.space_keys),
        space_names=dict(record.space_names or {}),
        knowledge_type=record.knowledge_type,
        tags=list(record.tags),
        page_types=list(record.page_types),
        max_pages=record.max_pages,
        status=status,
        last_sync_at=record.last_sync_at,
        sync_status=record.sync_status,
        sync_error=record.sync_error,
        total_pages=record.page_count,
        total_chunks=record.chunk_count,
        sync_frequency_hours=record.sync_frequency_hours,
        paused=bool(record.paused),
        next_sync_at=next_sync_at(record),
        progress_id=active_job.id if active_job is not None else None,
        created_at=record.created_at,
    )


def _running_word(kind: str) -> str:
    return {"crawl": "crawling", "sync": "syncing"}.get(kind, "running")


# --- progress -----------------------------------------------------------------------------------
class ProgressOut(BaseModel):
    progress_id: str
    source_id: str
    kind: str
    status: str
    stage: str | None
    percent: float
    counters: dict[str, int]
    log: list[str]
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    pages_per_second: float | None = Field(description="Pages finished per second so far.")
    result: dict[str, Any] = Field(
        default_factory=dict,
        description="A finished job's final counters (pages_added, pages_updated, "
        "pages_deleted, pages_restored, chunks_embedded, chunks_reused, ...), "
        "duration_seconds and attempts; empty while it runs.",
    )


class ProgressList(BaseModel):
    jobs: list[ProgressOut]
    count: int


PAGES_DONE = ("pages_processed", "pages_skipped", "pages_unchanged", "pages_failed")


def progress_out(job: JobRecord) -> ProgressOut:
    counters = {name: int(value) for name, value in (job.counters or {}).items()}
    return ProgressOut(
        progress_id=job.id,
        source_id=job.source_id,
        kind=job.kind,
        status=job.status,
        stage=job.stage,
        percent=round(float(job.percent or 0.0), 2),
        counters=counters,
        log=list(job.log or ()),
        error=job.error,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        heartbeat_at=job.heartbeat_at,
        cancel_requested=bool(job.cancel_requested),
        pages_per_second=_rate(job, counters),
        result=dict(job.result or {}),
    )


def _rate(job: JobRecord, counters: Mapping[str, int]) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or job.heartbeat_at
    if end is None:
        return None
    elapsed = (_aware(end) - _aware(job.started_at)).total_seconds()
    if elapsed <= 0:
        return None
    return round(sum(counters.get(name, 0) for name in PAGES_DONE) / elapsed, 2)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- search -------------------------------------------------------------------------------------
class SearchFiltersIn(_Request):
    source_id: str | None = Field(default=None, max_length=512)
    spaces: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    labels: list[str] = Field(default_factory=list, max_length=MAX_FILTER_VALUES)
    page_types: list[PageType] = Field(default_factory=list)
    updated_after: datetime | None = None

    def to_filters(self, language: str | None = None) -> SearchFilters:
        return SearchFilters(
            source_id=self.source_id,
            spaces=tuple(self.spaces),
            labels=tuple(self.labels),
            page_types=tuple(self.page_types),
            updated_after=self.updated_after,
            language=language,
        )


class SearchRequest(SearchFiltersIn):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
    mode: Literal["chunks", "pages"] = "chunks"
    retriever: Literal["hybrid", "keyword", "semantic"] = "hybrid"


class CodeSearchRequest(SearchFiltersIn):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    language: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)


class SearchHitOut(BaseModel):
    chunk_id: int
    text: str
    heading_path: list[str]
    page_id: str
    title: str
    url: str
    breadcrumb: str
    space_key: str
    source_id: str
    labels: list[str]
    page_type: str
    updated_at: datetime | None
    score: float
    match_type: str
    snippet_html: str
    more_chunks: list[str]


class SearchResponse(BaseModel):
    query: str
    mode: str
    retriever: str
    results: list[SearchHitOut]
    count: int


class CodeHitOut(BaseModel):
    code_id: int
    language: str
    code: str
    line_count: int
    heading_path: list[str]
    page_id: str
    title: str
    url: str
    breadcrumb: str
    space_key: str
    source_id: str
    score: float


class CodeSearchResponse(BaseModel):
    query: str
    results: list[CodeHitOut]
    count: int


def hit_out(hit: SearchHit) -> SearchHitOut:
    return SearchHitOut(
        chunk_id=hit.chunk_id,
        text=hit.text,
        heading_path=list(hit.heading_path),
        page_id=hit.page_id,
        title=hit.title,
        url=hit.url,
        breadcrumb=hit.breadcrumb,
        space_key=hit.space_key,
        source_id=hit.source_id,
        labels=list(hit.labels),
        page_type=hit.page_type,
        updated_at=hit.updated_at,
        score=hit.score,
        match_type=hit.match_type,
        snippet_html=hit.snippet_html,
        more_chunks=list(hit.more_chunks),
    )


def code_hit_out(hit: CodeHit) -> CodeHitOut:
    return CodeHitOut(
        code_id=hit.code_id,
        language=hit.language,
        code=hit.code,
        line_count=hit.line_count,
        heading_path=list(hit.heading_path),
        page_id=hit.page_id,
        title=hit.title,
        url=hit.url,
        breadcrumb=hit.breadcrumb,
        space_key=hit.space_key,
        source_id=hit.source_id,
        score=hit.score,
    )


# --- health -------------------------------------------------------------------------------------
class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "error"]
    database_error: str | None
    backend: str
    model_loaded: bool
    embedder: str
    index_model: str | None
    index_dimension: int | None
    jobs_running: int


# --- pages --------------------------------------------------------------------------------------
class AncestorOut(BaseModel):
    id: str
    title: str


class PageOut(BaseModel):
    page_id: str = Field(description="Stable public key: '<source id>:<confluence page id>'.")
    source_id: str
    confluence_page_id: str
    confluence_version: int
    space_key: str
    type: str
    status: str
    title: str
    url: str
    breadcrumb: str
    ancestors: list[AncestorOut]
    labels: list[str]
    author: str | None
    created_at: datetime | None
    updated_at: datetime | None
    indexed_at: datetime | None
    is_deleted: bool
    deleted_at: datetime | None
    chunk_count: int
    code_count: int
    markdown: str


def page_out(page: PageRecord) -> PageOut:
    return PageOut(
        page_id=page.key,
        source_id=page.source_id,
        confluence_page_id=page.confluence_page_id,
        confluence_version=page.version,
        space_key=page.space_key,
        type=page.type,
        status=page.status,
        title=page.title,
        url=page.url,
        breadcrumb=page.breadcrumb,
        ancestors=[AncestorOut(id=a_id, title=a_title) for a_id, a_title in page.ancestors],
        labels=list(page.labels),
        author=page.author,
        created_at=page.created_at,
        updated_at=page.updated_at,
        indexed_at=page.indexed_at,
        is_deleted=page.is_deleted,
        deleted_at=page.deleted_at,
        chunk_count=page.chunk_count,
        code_count=page.code_count,
        markdown=page.markdown or "",
    )
