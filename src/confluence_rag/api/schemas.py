"""Request models of the HTTP API, and the response envelopes only the API uses.

The output models the API shares with the web UI and the CLI (sources, progress, hits, pages,
health) live in ``confluence_rag.presenters`` and are re-exported here. Input limits are the
search layer's (``search.validation``), so the API, web, MCP and CLI refuse the same things.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from confluence_rag.presenters import (
    AncestorOut,
    CodeHitOut,
    CodeSearchResponse,
    Flavour,
    PageOut,
    ProgressOut,
    Retriever,
    SearchHitOut,
    SearchResponse,
    SourceOut,
    code_hit_out,
    hit_out,
    page_out,
    progress_out,
    source_out,
)
from confluence_rag.records import SearchFilters
from confluence_rag.search.models import SearchMode
from confluence_rag.search.validation import (
    MAX_FILTER_VALUES,
    MAX_LANGUAGE_CHARS,
    MAX_LIMIT,
    MAX_QUERY_CHARS,
)
from confluence_rag.services import HealthReport as HealthOut

__all__ = [
    "MAX_FILTER_VALUES",
    "MAX_LIMIT",
    "MAX_QUERY_CHARS",
    "AncestorOut",
    "CodeHitOut",
    "CodeSearchResponse",
    "HealthOut",
    "PageOut",
    "ProgressOut",
    "SearchHitOut",
    "SearchResponse",
    "SourceOut",
    "code_hit_out",
    "hit_out",
    "page_out",
    "progress_out",
    "source_out",
]

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
    flavour: Flavour | None = Field(
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


# --- progress -----------------------------------------------------------------------------------
class ProgressList(BaseModel):
    jobs: list[ProgressOut]
    count: int


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
    mode: SearchMode = "pages"
    retriever: Retriever = "hybrid"


class CodeSearchRequest(SearchFiltersIn):
    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS)
    language: str | None = Field(default=None, max_length=MAX_LANGUAGE_CHARS)
    limit: int = Field(default=10, ge=1, le=MAX_LIMIT)
