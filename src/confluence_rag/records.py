"""Records shared by the store, search, ingest and the surfaces.

They live here, not in ``store/`` or ``search/``, so that those packages and the surfaces can
all name them without importing each other (a test checks the import graph).

Identity rules:

- A source id is chosen by the caller (readable, e.g. ``example.atlassian.net:DEV+OPS``).
- A page is keyed by ``(source_id, confluence_page_id)``; its public key is
  ``page_key(source_id, confluence_page_id)`` = ``"{source_id}:{confluence_page_id}"``. It stays
  the same across re-crawls, purges and database rebuilds, so an assistant can keep it.
- Chunk and code-example ids are integers private to one database: they change whenever a
  page's content is rewritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from confluence_rag.errors import InvalidInput

SyncStatus = Literal["active", "syncing", "error", "paused"]
JobStatus = Literal["queued", "running", "completed", "failed", "cancelled"]
JobKind = Literal["crawl", "sync"]
Flavour = Literal["cloud", "datacenter"]
#: basic: email + API token (Cloud); bearer: personal access token (Data Center).
AuthKind = Literal["basic", "bearer"]
Backend = Literal["sqlite", "postgres"]
ACTIVE_JOB_STATUSES: tuple[str, ...] = ("queued", "running")


def job_kind(value: str) -> JobKind:
    """``value`` as a job kind; ``InvalidInput`` if it is not one."""
    for kind in get_args(JobKind):
        if value == kind:
            return kind
    raise InvalidInput(
        f"job kind must be one of {sorted(get_args(JobKind))}, got {value!r}",
        details={"field": "kind"},
    )


def page_key(source_id: str, confluence_page_id: str) -> str:
    """The public, stable key of a stored page."""
    return f"{source_id}:{confluence_page_id}"


def split_page_key(key: str) -> tuple[str, str]:
    """``(source_id, confluence_page_id)`` of a page key; ``InvalidInput`` if it is not one."""
    source_id, sep, page_id = str(key).rpartition(":")
    if not sep or not source_id or not page_id:
        raise InvalidInput(
            f"{key!r} is not a page key; expected '<source id>:<confluence page id>'",
            details={"page_key": str(key)},
        )
    return source_id, page_id


@dataclass(frozen=True, slots=True)
class SourceRecord:
    """One Confluence site + spaces. ``page_count``/``chunk_count`` are filled by the store on
    read (live pages only) and ignored on write."""

    id: str
    site_url: str
    flavour: Flavour = "cloud"
    space_keys: tuple[str, ...] = ()
    space_names: Mapping[str, str] = field(default_factory=dict)
    title: str = ""
    user_email: str | None = None
    auth_kind: AuthKind = "basic"
    knowledge_type: str = "technical"
    tags: tuple[str, ...] = ()
    page_types: tuple[str, ...] = ("page", "blogpost")
    skip_rules: Mapping[str, Any] = field(default_factory=dict)
    max_pages: int | None = None
    sync_frequency_hours: float = 24.0
    paused: bool = False
    last_sync_at: datetime | None = None
    sync_status: SyncStatus = "active"
    sync_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    page_count: int = 0
    chunk_count: int = 0


#: Fields ``update_source`` accepts.
SOURCE_UPDATABLE: frozenset[str] = frozenset(
    {
        "title",
        "site_url",
        "flavour",
        "space_keys",
        "space_names",
        "user_email",
        "auth_kind",
        "knowledge_type",
        "tags",
        "page_types",
        "skip_rules",
        "max_pages",
        "sync_frequency_hours",
        "paused",
        "last_sync_at",
        "sync_status",
        "sync_error",
    }
)
#: Source fields each backend stores as JSON, and as times.
SOURCE_JSON = frozenset({"space_keys", "space_names", "tags", "page_types", "skip_rules"})
SOURCE_TIMES = frozenset({"last_sync_at", "created_at", "updated_at"})


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A stored page. ``markdown`` is ``None`` in listings (``list_pages``) to keep them light."""

    id: int  # database row id (private)
    key: str  # page_key(source_id, confluence_page_id): public and stable
    source_id: str
    confluence_page_id: str
    space_key: str
    type: str
    status: str
    title: str
    version: int
    url: str
    breadcrumb: str
    ancestors: tuple[tuple[str, str], ...]
    labels: tuple[str, ...]
    author: str | None
    created_at: datetime | None
    updated_at: datetime | None
    markdown: str | None
    is_deleted: bool
    deleted_at: datetime | None
    indexed_at: datetime | None
    chunk_count: int = 0
    code_count: int = 0


@dataclass(frozen=True, slots=True)
class ChunkRow:
    """A chunk joined with its (live) page: everything a search hit shows."""

    chunk_id: int
    page_id: int
    page_key: str
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    content_hash: str
    token_count: int
    source_id: str
    confluence_page_id: str
    space_key: str
    page_type: str
    title: str
    url: str
    breadcrumb: str
    labels: tuple[str, ...]
    updated_at: datetime | None
    author: str | None = None  # the page's creator, as Confluence names them


@dataclass(frozen=True, slots=True)
class CodeRow:
    """A code example joined with its (live) page."""

    code_id: int
    page_id: int
    page_key: str
    ordinal: int
    language: str
    code: str
    line_count: int
    heading_path: tuple[str, ...]
    caption: str
    source_id: str
    confluence_page_id: str
    space_key: str
    page_type: str
    title: str
    url: str
    breadcrumb: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WriteResult:
    """What ``write_page`` did.

    ``chunks_reused`` counts new chunks whose content hash the page already had (their stored
    embedding was unchanged); ``unchanged`` means the same version with the same chunks was
    already stored, so only metadata was refreshed.
    """

    page_id: int
    page_key: str
    created: bool
    unchanged: bool
    undeleted: bool
    chunks_written: int
    chunks_reused: int
    chunks_removed: int
    code_examples: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    """A crawl or sync job: its id is the ``progress_id`` clients poll."""

    id: str
    source_id: str
    kind: JobKind
    status: JobStatus = "queued"
    stage: str = "queued"
    percent: float = 0.0
    counters: Mapping[str, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    error: str | None = None
    checkpoint: Mapping[str, Any] = field(default_factory=dict)
    result: Mapping[str, Any] = field(default_factory=dict)
    cancel_requested: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    updated_at: datetime | None = None


#: Fields ``update_job`` accepts.
JOB_UPDATABLE: frozenset[str] = frozenset(
    {
        "status",
        "stage",
        "percent",
        "counters",
        "log",
        "error",
        "checkpoint",
        "result",
        "cancel_requested",
        "started_at",
        "finished_at",
        "heartbeat_at",
        "lease_owner",
        "lease_expires_at",
    }
)
#: Job fields each backend stores as JSON, and as times.
JOB_JSON = frozenset({"counters", "log", "checkpoint", "result"})
JOB_TIMES = frozenset(
    {"created_at", "started_at", "finished_at", "heartbeat_at", "lease_expires_at", "updated_at"}
)


@dataclass(frozen=True, slots=True)
class IndexModel:
    """The embedding model that built the index."""

    model_id: str
    dimension: int


@dataclass(frozen=True, slots=True)
class SearchFilters:
    source_id: str | None = None
    spaces: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    page_types: tuple[str, ...] = ()
    updated_after: datetime | None = None
    language: str | None = None  # code search only


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreDiagnosis:
    """What ``store.diagnose`` found, looking without migrating, creating or repairing.

    ``error`` is what stopped the inspection: before a connection (``connected`` False: the
    file cannot be opened, the server not reached) or after it (the file is not a database).
    ``problems`` are what an integrity check reported (empty: none, or none was run).
    """

    backend: Backend
    location: str  # the SQLite file, or the PostgreSQL URL without its password
    exists: bool  # False: a SQLite file not created yet (created on first use)
    connected: bool
    error: str | None = None
    problems: tuple[str, ...] = ()
    schema_revision: str | None = None  # None: never migrated
    head_revision: str = ""
    details: Mapping[str, str] = field(default_factory=dict)  # e.g. journal_mode

    @property
    def healthy(self) -> bool:
        return self.connected and self.error is None and not self.problems

    @property
    def at_head(self) -> bool:
        return self.schema_revision == self.head_revision
