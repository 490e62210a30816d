"""Fixtures for the PostgreSQL-specific tests: an opened store on a fresh database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from confluence_rag.store.postgres import PostgresStore
from tests.store import builders as b


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pg_store(pg_database_url: str) -> AsyncIterator[PostgresStore]:
    """An open PostgreSQL store with the test model recorded and one source."""
    store = PostgresStore(pg_database_url, max_connections=6)
    async with store:
        await store.ensure_index_model(b.MODEL, b.DIM)
        await store.create_source(b.source())
        yield store
