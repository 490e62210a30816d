"""The only place that speaks SQL: one contract, SQLite and PostgreSQL implementations.

    store = open_store(settings)     # SQLite at settings.sqlite_path, or PostgreSQL when
    async with store:                # settings.database_url is postgresql://...
        ...

``open_store`` is cheap: it connects and migrates on ``open()`` / ``async with``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from confluence_rag.errors import ConfigurationError
from confluence_rag.records import (
    ChunkRow,
    CodeRow,
    IndexModel,
    JobRecord,
    PageRecord,
    SourceRecord,
    WriteResult,
    page_key,
    split_page_key,
)
from confluence_rag.settings import Settings
from confluence_rag.store.base import Store

__all__ = [
    "ChunkRow",
    "CodeRow",
    "IndexModel",
    "JobRecord",
    "PageRecord",
    "SourceRecord",
    "Store",
    "WriteResult",
    "open_store",
    "page_key",
    "split_page_key",
]


def open_store(settings: Settings) -> Store:
    """The store ``settings`` select (not yet opened)."""
    url = (settings.database_url or "").strip()
    if not url:
        from confluence_rag.store.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path)
    if url.startswith("sqlite:///"):
        from confluence_rag.store.sqlite import SQLiteStore

        return SQLiteStore(Path(url.removeprefix("sqlite:///")))
    if url.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
        try:
            module = importlib.import_module("confluence_rag.store.postgres")
        except ModuleNotFoundError as exc:
            if exc.name != "confluence_rag.store.postgres":
                raise
            raise ConfigurationError(
                "CONFLUENCE_RAG_DATABASE_URL selects PostgreSQL, which this version does not "
                "support yet; unset it to use SQLite in the data dir"
            ) from None
        store: Store = module.open_postgres_store(settings)
        return store
    raise ConfigurationError(
        "CONFLUENCE_RAG_DATABASE_URL must be postgresql://... (or sqlite:///path); "
        "leave it unset for SQLite in the data dir",
        details={"setting": "database_url"},
    )
