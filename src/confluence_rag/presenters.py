"""What the surfaces show of records: the output models the HTTP API, the web UI and the CLI
share, and the functions that build them. Pure: no I/O.

A model lists exactly what a client may see: no credentials, no checkpoints, no internal ids of
other layers. It is built with ``Model.model_validate(record, from_attributes=True)``: a field
reads the record attribute of its own name or of the name in its ``AliasChoices`` (the record's
name second), and any record attribute the model does not declare is never read, so a new column
in the store cannot leak out. What is derived (a status word, a rate) is computed here, once.
Field names follow the seed API where it named them (``source_id``, ``progress_id``,
``last_sync_at``, ``sync_status``, ``total_pages``, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field, field_validator

from confluence_rag.ingest.progress import pages_done
from confluence_rag.records import JobRecord, JobStatus, PageRecord, SourceRecord, SyncStatus
from confluence_rag.search.models import CodeHit, MatchType, SearchHit, SearchMode

Flavour = Literal["cloud", "datacenter"]
JobKind = Literal["crawl", "sync"]
Retriever = Literal["hybrid", "keyword", "semantic"]
SourceStatus = Literal["queued", "crawling", "syncing", "running", "paused", "new", SyncStatus]


def _from(*names: str) -> Any:
    """Read the field under its own name or, from a record, under the record's name."""
    return AliasChoices(*names)


class _Overlay:
    def __init__(self, record: object, values: Mapping[str, Any]) -> None:
        self._record = record
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._record, name)


def overlay(record: object, **values: Any) -> object:
    """``record`` with some attributes added or replaced, for ``model_validate(...,
    from_attributes=True)``: derived values are validated like the record's own, instead of
    being pasted into the model afterwards."""
    return _Overlay(record, values)


# --- sources ------------------------------------------------------------------------------------
class SourceOut(BaseModel):
    source_id: str = Field(validation_alias=_from("source_id", "id"))
    title: str
    site: str = Field(validation_alias=_from("site", "site_url"))
    flavour: Flavour
    spaces: list[str] = Field(validation_alias=_from("spaces", "space_keys"))
    space_names: dict[str, str]
    knowledge_type: str
    tags: list[str]
    page_types: list[str]
    max_pages: int | None
    status: SourceStatus = Field(
        default="new",
        description="crawling / syncing / queued while a job runs, else paused or sync_status",
    )
    last_sync_at: datetime | None
    sync_status: SyncStatus | None
    sync_error: str | None
    total_pages: int = Field(
        validation_alias=_from("total_pages", "page_count"),
        description="Live (not deleted) pages stored.",
    )
    total_chunks: int = Field(validation_alias=_from("total_chunks", "chunk_count"))
    sync_frequency_hours: float
    paused: bool
    next_sync_at: datetime | None = None
    progress_id: str | None = Field(default=None, description="The running or queued job, if any.")
    created_at: datetime | None


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
    return _aware(last) + timedelta(hours=frequency)


def source_status(record: SourceRecord, active_job: JobRecord | None) -> SourceStatus:
    if active_job is not None:
        if active_job.status == "queued":
            return "queued"
        return "crawling" if active_job.kind == "crawl" else "syncing"
    if record.paused:
        return "paused"
    return record.sync_status or "new"


def source_out(record: SourceRecord, *, active_job: JobRecord | None = None) -> SourceOut:
    derived = {
        "title": source_title(record),
        "status": source_status(record, active_job),
        "next_sync_at": next_sync_at(record),
        "progress_id": active_job.id if active_job is not None else None,
    }
    return SourceOut.model_validate(overlay(record, **derived), from_attributes=True)


# --- progress -----------------------------------------------------------------------------------
class ProgressOut(BaseModel):
    progress_id: str = Field(validation_alias=_from("progress_id", "id"))
    source_id: str
    kind: JobKind
    status: JobStatus
    stage: str | None
    percent: float
    counters: dict[str, int]
    pages_done: int = Field(
        default=0,
        description="Pages the job has finished with (stored, skipped, unchanged or failed).",
    )
    log: list[str]
    error: str | None
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    cancel_requested: bool
    pages_per_second: float | None = Field(
        default=None, description="Pages finished per second so far."
    )
    result: dict[str, Any] = Field(
        default_factory=dict,
        description="A finished job's final counters (pages_added, pages_updated, "
        "pages_deleted, pages_restored, chunks_embedded, chunks_reused, ...), "
        "duration_seconds and attempts; empty while it runs.",
    )

    @field_validator("percent", mode="before")
    @classmethod
    def _rounded(cls, value: Any) -> float:
        return round(float(value or 0.0), 2)


def progress_out(job: JobRecord) -> ProgressOut:
    done = pages_done(job.counters or {})
    derived = {"pages_done": done, "pages_per_second": _rate(job, done)}
    return ProgressOut.model_validate(overlay(job, **derived), from_attributes=True)


def _rate(job: JobRecord, done: int) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or job.heartbeat_at
    if end is None:
        return None
    elapsed = (_aware(end) - _aware(job.started_at)).total_seconds()
    if elapsed <= 0:
        return None
    return round(done / elapsed, 2)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# --- search -------------------------------------------------------------------------------------
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
    match_type: MatchType
    weak: bool
    snippet_html: str
    more_chunks: list[str]


class SearchResponse(BaseModel):
    query: str
    mode: SearchMode
    retriever: Retriever
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
    return SearchHitOut.model_validate(hit, from_attributes=True)


def code_hit_out(hit: CodeHit) -> CodeHitOut:
    return CodeHitOut.model_validate(hit, from_attributes=True)


# --- pages --------------------------------------------------------------------------------------
class AncestorOut(BaseModel):
    id: str
    title: str


class PageOut(BaseModel):
    page_id: str = Field(
        validation_alias=_from("page_id", "key"),
        description="Stable public key: '<source id>:<confluence page id>'.",
    )
    source_id: str
    confluence_page_id: str
    confluence_version: int = Field(validation_alias=_from("confluence_version", "version"))
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

    @field_validator("ancestors", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        # The record keeps ancestors as (id, title) pairs.
        return [
            {"id": item[0], "title": item[1]} if isinstance(item, tuple | list) else item
            for item in value
        ]

    @field_validator("markdown", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return value or ""


def page_out(page: PageRecord) -> PageOut:
    return PageOut.model_validate(page, from_attributes=True)
