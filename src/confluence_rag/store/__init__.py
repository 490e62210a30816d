"""The only place that speaks SQL: one contract, SQLite and PostgreSQL implementations.

    store = open_store(settings)     # SQLite at settings.sqlite_path, or PostgreSQL when
    async with store:                # settings.database_url is postgresql://...
        ...

``open_store`` is cheap: it connects and migrates on ``open()`` / ``async with``.
"""

from __future__ import annotations

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
from confluence_rag.store.diagnose import diagnose

__all__ = [
    "ChunkRow",
    "CodeRow",
    "IndexModel",
    "JobRecord",
    "PageRecord",
    "SourceRecord",
    "Store",
    "WriteResult",
    "diagnose",
    "open_store",
    "page_key",
    "split_page_key",
]


def open_store(settings: Settings) -> Store:
    """The store ``settings.backend`` selects (not yet opened)."""
    if settings.backend == "sqlite":
        from confluence_rag.store.sqlite import SQLiteStore

        return SQLiteStore(settings.sqlite_path)
    from confluence_rag.store.postgres import open_postgres_store

    return open_postgres_store(settings)
