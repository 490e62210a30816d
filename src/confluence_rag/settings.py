"""The one settings object.

Built once by the entry point (CLI command, ``create_app``) and passed down; nothing reads the
environment at import time. Every field can be set as ``CONFLUENCE_RAG_<FIELD>`` (upper case) or
in a ``.env`` file. The README's configuration table is checked against these fields by a test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from confluence_rag.errors import ConfigurationError

#: URL schemes of ``database_url`` that select PostgreSQL, and the one that names a SQLite file.
POSTGRES_SCHEMES = ("postgresql://", "postgresql+psycopg://", "postgres://")
SQLITE_SCHEME = "sqlite:///"


def default_data_dir() -> Path:
    """XDG data home, as a laptop user expects (``~/.local/share/confluence-rag``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "confluence-rag"


class Settings(BaseSettings):
    """Configuration for every part of confluence-rag. Secrets are ``SecretStr``: never printed."""

    model_config = SettingsConfigDict(
        env_prefix="CONFLUENCE_RAG_", env_file=".env", extra="ignore", validate_default=True
    )

    # --- storage ---------------------------------------------------------------------------
    data_dir: Path = Field(
        default_factory=default_data_dir,
        description="Where the SQLite index, the secret key file and logs live.",
    )
    database_url: str | None = Field(
        default=None,
        description="postgresql://... selects PostgreSQL + pgvector; unset: SQLite in data_dir.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Fernet key that encrypts stored Confluence credentials; "
        "unset means a generated key file (mode 0600) in data_dir.",
    )

    # --- server ----------------------------------------------------------------------------
    host: str = Field(default="127.0.0.1", description="Address `serve` binds to.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port `serve` listens on.")
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token required by /api, /mcp and the UI; mandatory off loopback.",
    )
    allowed_sites: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Optional allowlist of Confluence site patterns (e.g. *.atlassian.net), "
        "comma-separated.",
    )
    block_private_networks: bool = Field(
        default=False,
        description="Also refuse loopback and private addresses as Confluence sites "
        "(hosted deployments); link-local and cloud metadata addresses are always refused.",
    )

    # --- Confluence client -----------------------------------------------------------------
    http_timeout_seconds: float = Field(default=30.0, gt=0, description="Per-request timeout.")
    max_concurrent_requests_per_site: int = Field(
        default=4, ge=1, le=64, description="Requests in flight per Confluence site, all crawls."
    )
    max_retries: int = Field(default=8, ge=0, le=50, description="Retries per request.")
    retry_after_max_seconds: float = Field(
        default=60.0, gt=0, description="Longest Retry-After honoured before clamping."
    )
    site_timezone: str = Field(
        default="UTC", description="Time zone CQL dates are read in (the API user's zone)."
    )
    sync_overlap_hours: float = Field(
        default=24.0, ge=0, description="Safety overlap added before the last sync time in CQL."
    )
    max_attachment_bytes: int = Field(default=50_000_000, ge=0, description="Download size cap.")

    # --- content ---------------------------------------------------------------------------
    skip_archived: bool = Field(default=True, description="Skip archived pages.")
    skip_drafts: bool = Field(default=True, description="Skip drafts.")
    min_page_chars: int = Field(
        default=20, ge=0, description="Skip pages whose converted text is shorter than this."
    )

    # --- embeddings and chunking -----------------------------------------------------------
    embedder: Literal["local", "openai"] = Field(
        default="local", description="local (offline MiniLM) or openai (any compatible API)."
    )
    embed_batch_size: int | None = Field(
        default=None,
        ge=1,
        le=2048,
        description="Texts per batch (unset: 8 for the local model, 64 for an OpenAI API).",
    )
    torch_threads: int | None = Field(
        default=None, ge=1, description="CPU threads for the local model (default: torch's)."
    )
    openai_base_url: str = Field(
        default="https://api.openai.com/v1", description="OpenAI-compatible API base URL."
    )
    openai_api_key: SecretStr | None = Field(default=None, description="API key for openai.")
    openai_model: str = Field(default="text-embedding-3-small", description="Model name.")
    openai_dimensions: int | None = Field(
        default=None, ge=1, description="Requested vector size (if the model supports it)."
    )
    openai_max_concurrency: int = Field(default=4, ge=1, le=64, description="Batches in flight.")
    chunk_target_tokens: int = Field(default=200, ge=16, description="Target chunk size.")
    chunk_max_tokens: int = Field(
        default=256, ge=16, description="Hard chunk limit (capped at what the model reads)."
    )

    # --- search ----------------------------------------------------------------------------
    search_candidates: int = Field(
        default=50, ge=1, le=1000, description="Candidates per retriever before fusion."
    )
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    keyword_weight: float = Field(default=1.0, ge=0, description="Weight of keyword ranks.")
    semantic_weight: float = Field(default=1.0, ge=0, description="Weight of vector ranks.")
    search_weak_similarity: float = Field(
        default=0.32,
        ge=-1,
        le=1,
        description="A hit only the embedding found, at a cosine similarity below this, is "
        "marked weak (tuned for the default MiniLM).",
    )

    # --- jobs and sync ---------------------------------------------------------------------
    default_sync_frequency_hours: float = Field(
        default=24.0, ge=0, description="Sync frequency for new sources (0 = manual only)."
    )
    deleted_retention_days: float = Field(
        default=30.0, ge=0, description="Purge soft-deleted pages after this many days."
    )
    sync_check_seconds: float = Field(
        default=60.0, gt=0, description="How often `serve` looks for sources due a sync."
    )
    sync_jitter_seconds: float = Field(
        default=300.0,
        ge=0,
        description="Scheduled syncs start up to this much later, spread per source.",
    )
    job_heartbeat_seconds: float = Field(default=5.0, gt=0, description="Job heartbeat period.")
    job_lease_seconds: float = Field(
        default=60.0, gt=0, description="A job whose heartbeat is older is taken over."
    )
    max_concurrent_jobs: int = Field(
        default=2, ge=1, le=64, description="Crawl/sync jobs run at once by one process."
    )
    split_spaces: bool | None = Field(
        default=None,
        description=(
            "Crawl each space of a multi-space source as its own job, so several workers "
            "crawl them in parallel (default: on with PostgreSQL, off with SQLite)."
        ),
    )

    log_level: str = Field(default="INFO", description="Python logging level.")

    @field_validator("allowed_sites", mode="before")
    @classmethod
    def _split_sites(cls, value: object) -> object:
        # The variable is a comma-separated list (``*.atlassian.net,wiki.corp.example``); a JSON
        # list is accepted too, as pydantic-settings would read it.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @field_validator("job_lease_seconds")
    @classmethod
    def _lease_outlasts_heartbeat(cls, value: float, info: ValidationInfo) -> float:
        # A lease shorter than the heartbeat would lapse between two beats of a healthy
        # worker, and another worker would take its job over while it still runs.
        heartbeat = info.data.get("job_heartbeat_seconds")
        if heartbeat is not None and value <= heartbeat:
            raise ValueError(
                f"must be longer than job_heartbeat_seconds ({heartbeat}); "
                "a few heartbeats long is right"
            )
        return value

    @field_validator("data_dir")
    @classmethod
    def _expand_data_dir(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file: ``database_url``'s ``sqlite:///path``, else one in ``data_dir``."""
        url = (self.database_url or "").strip()
        if url.startswith(SQLITE_SCHEME):
            return Path(url.removeprefix(SQLITE_SCHEME))
        return self.data_dir / "confluence-rag.sqlite3"

    @property
    def backend(self) -> Literal["sqlite", "postgres"]:
        """Which store ``database_url`` selects: the one place its scheme is read.
        ``ConfigurationError`` for a URL that names neither."""
        url = (self.database_url or "").strip()
        if not url or url.startswith(SQLITE_SCHEME):
            return "sqlite"
        if url.startswith(POSTGRES_SCHEMES):
            return "postgres"
        raise ConfigurationError(
            "CONFLUENCE_RAG_DATABASE_URL must be postgresql://... (or sqlite:///path); "
            "leave it unset for SQLite in the data dir",
            details={"setting": "database_url"},
        )
