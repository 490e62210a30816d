"""The core end-to-end crawl on PostgreSQL: two spaces through a faulty emulator, every eligible
page stored exactly once at its current version with its chunks, a repeat crawl that embeds
nothing, a marker phrase found first, and the token nowhere in the database in clear. Run with
the crawl split per space (PostgreSQL's default) and whole."""

from __future__ import annotations

import base64

import psycopg
import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, parse_fault_spec
from confluence_rag.records import SearchFilters
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.workers.conftest import add_source, db_counts

pytestmark = pytest.mark.anyio

FAULTS = "429:0.1,503:0.1,500:0.05,drop:0.05"


def database_text(url: str) -> str:
    """Sources, credentials and jobs rows as PostgreSQL prints them (bytea as hex)."""
    with psycopg.connect(url) as conn:
        rows = [
            str(row[0])
            for table in ("sources", "credentials", "jobs")
            for row in conn.execute(f"SELECT t::text FROM {table} t").fetchall()
        ]
    return "\n".join(rows)


@pytest.mark.parametrize("split", [True, False], ids=["split", "whole"])
async def test_crawl_two_spaces_with_faults_into_postgres(
    pg_env: Settings,
    pg_database_url: str,
    emulator_factory: EmulatorFactory,
    embeddings: FakeEmbeddingServer,
    split: bool,
) -> None:
    settings = pg_env.model_copy(update={"split_spaces": split})
    server = emulator_factory(
        "cloud", pages=60, extra_spaces={"OPS": 25}, faults=parse_fault_spec(FAULTS)
    )
    expected = server.state.current_ids("DEMO") | server.state.current_ids("OPS")
    async with build_services(settings) as services:
        source_id = await add_source(services, server, "DEMO", "OPS")
        services.jobs.start()
        done = await services.jobs.wait((await services.jobs.submit(source_id)).id, timeout=120)
        assert done.status == "completed", done.error
        assert bool(done.checkpoint.get("children")) is split
        c = done.counters
        assert c["pages_listed"] == len(expected) and c["pages_failed"] == 0
        assert c["pages_processed"] + c["pages_skipped"] == len(expected)
        assert [r.fault for r in server.state.requests if r.fault], "no fault was injected"

        versions = await services.store.page_versions(source_id)
        assert set(versions) <= expected and len(versions) == c["pages_processed"]
        for page_id, (version, deleted) in versions.items():
            assert not deleted and version == server.state.content(page_id).version
        counts = db_counts(pg_database_url, source_id)
        assert counts.pages == counts.distinct_pages == len(versions)
        assert counts.duplicate_chunks == 0 and counts.pages_without_chunks == 0
        assert counts.chunks == (await services.sources.get(source_id)).chunk_count

        # A phrase that lives in one page's code block finds that page first.
        markers = server.state.markers("DEMO")
        page_id, marker = next((p, m) for p, m in sorted(markers.items()) if p in versions)
        hits = await services.search.search(marker, SearchFilters(source_id=source_id))
        assert hits and hits[0].page_id.endswith(f":{page_id}")

        # Crawling again finds every page stored at its version: nothing is embedded.
        embedded = embeddings.texts_embedded
        again = await services.jobs.wait((await services.jobs.submit(source_id)).id, timeout=120)
        assert again.status == "completed", again.error
        assert again.counters["pages_unchanged"] == len(versions)
        assert again.counters["chunks_embedded"] == 0
        probes = 2 if split else 1  # one model check per job that crawls (not the parent)
        assert embeddings.texts_embedded == embedded + probes

    header = base64.b64encode(f"{DEMO_EMAIL}:{DEMO_API_TOKEN}".encode()).decode()
    stored = database_text(pg_database_url)
    assert DEMO_API_TOKEN not in stored and header not in stored
    assert DEMO_API_TOKEN.encode().hex() not in stored
