"""The shared Alembic chain on a real PostgreSQL server, with data in the database."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from confluence_rag.records import SearchFilters
from confluence_rag.store.migrate import current_revision, downgrade, head_revision, upgrade
from confluence_rag.store.postgres import PostgresStore, sqlalchemy_url
from tests.store import builders as b

pytestmark = pytest.mark.anyio


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        ).fetchall()
    return {row[0] for row in rows}


async def _fill(url: str) -> None:
    async with PostgresStore(url) as store:
        await store.ensure_index_model(b.MODEL, b.DIM)
        await store.create_source(b.source())
        for page in range(5):
            doc = b.document(str(page), code=[("python", "print('hi')")])
            chunks = b.chunks(doc, [f"migration text {page}", "second chunk"])
            await store.write_page(b.SOURCE, doc, chunks, b.vectors(chunks))
        assert len(await store.keyword_candidates("migration", SearchFilters(), 10)) == 5


async def test_upgrade_downgrade_upgrade_with_data(pg_database_url: str) -> None:
    await _fill(pg_database_url)
    sa_url = sqlalchemy_url(pg_database_url)
    assert current_revision(sa_url) == head_revision()
    # Upgrading a populated database that is already at head is a no-op that keeps the data.
    await asyncio.to_thread(upgrade, sa_url)
    async with PostgresStore(pg_database_url) as store:
        assert len(await store.list_pages(b.SOURCE)) == 5

    await asyncio.to_thread(downgrade, sa_url, "base")
    assert _tables(pg_database_url) == {"alembic_version"}
    assert current_revision(sa_url) is None

    # And back up: the full schema again (the HNSW index comes with the first model).
    await _fill(pg_database_url)
    assert {
        "sources",
        "pages",
        "chunks",
        "code_examples",
        "jobs",
        "index_meta",
        "skipped_pages",
    } <= _tables(pg_database_url)
    with psycopg.connect(pg_database_url) as conn:
        indexes = {
            row[0]
            for row in conn.execute(
                "SELECT indexname FROM pg_indexes "
                "WHERE tablename IN ('chunks', 'code_examples', 'pages')"
            )
        }
    assert {
        "ix_chunks_embedding_hnsw",
        "ix_chunks_tsv",
        "ix_code_tsv",
        "ix_pages_space_title",
    } <= indexes


async def test_downgrading_the_title_index_keeps_the_pages(pg_database_url: str) -> None:
    await _fill(pg_database_url)
    sa_url = sqlalchemy_url(pg_database_url)
    await asyncio.to_thread(downgrade, sa_url, "0003")
    with psycopg.connect(pg_database_url) as conn:
        names = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes")}
    assert "ix_pages_space_title" not in names
    async with PostgresStore(pg_database_url) as store:  # open() migrates to head again
        page = await store.find_page_by_title(None, "DEV", "deploy GUIDE")
        assert page.source_id == b.SOURCE
    assert current_revision(sa_url) == head_revision() == "0004"


async def test_two_stores_open_one_database(pg_database_url: str) -> None:
    """A server and a worker start together: both migrate (no-op for the second) and share."""
    first, second = PostgresStore(pg_database_url), PostgresStore(pg_database_url)
    await asyncio.gather(first.open(), second.open())
    try:
        await first.ensure_index_model(b.MODEL, b.DIM)
        await second.ensure_index_model(b.MODEL, b.DIM)
        await first.create_source(b.source())
        assert [s.id for s in await second.list_sources()] == [b.SOURCE]
    finally:
        await first.close()
        await second.close()
