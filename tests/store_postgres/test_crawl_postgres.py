"""A real crawl into PostgreSQL: emulator over a socket, embeddings over a socket, searches
running while pages are written."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from confluence_rag.records import SearchFilters
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from confluence_rag.store.postgres import PostgresStore
from tests.ingest.conftest import new_source
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory

pytestmark = pytest.mark.anyio


@pytest.fixture
def embeddings_server() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.mark.slow
async def test_crawl_into_postgres_with_searches_during_the_crawl(
    settings: Settings,
    pg_database_url: str,
    emulator_factory: EmulatorFactory,
    embeddings_server: FakeEmbeddingServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in embeddings_server.settings_env().items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=settings.data_dir, database_url=pg_database_url)
    server = emulator_factory("cloud", pages=80, extra_spaces={})
    expected = server.state.current_ids("DEMO")

    async with build_services(settings) as services:
        assert isinstance(services.store, PostgresStore)
        source, job = await services.sources.add(new_source(server))
        assert job is not None
        services.jobs.start()

        while (current := await services.jobs.get(job.id)).status in ("queued", "running"):
            hits = await services.store.keyword_candidates("the", SearchFilters(), 500)
            rows = await services.store.fetch_chunks([cid for cid, _ in hits])
            # Whatever a search sees mid-crawl is whole pages: each page it sees has all its
            # chunks stored (a page is one transaction).
            for page_key in {row.page_key for row in rows}:
                page = await services.store.get_page(page_key)
                assert page.chunk_count >= 1 and not page.is_deleted
            await asyncio.sleep(0.05)
        assert current.status == "completed", current.error
        counters = current.counters
        versions = await services.store.page_versions(source.id)
        assert set(versions) <= expected
        assert len(versions) == counters["pages_processed"] > 0
        assert counters["pages_failed"] == 0

        markers = server.state.markers("DEMO")
        page_id, marker = next((p, m) for p, m in sorted(markers.items()) if p in versions)
        hits = await services.search.search(marker, SearchFilters(source_id=source.id))
        assert hits and hits[0].page_id.endswith(page_id)
