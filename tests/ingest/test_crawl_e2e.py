"""The main end-to-end crawl: a 120-page space with faults on, real SQLite, embeddings from a
real OpenAI-compatible server on loopback (the demo test crawls the sample site with the real
local model; this one is about faults, exactly-once and secrets, which the model has no part in).

Every eligible page is stored exactly once with its chunks, the index answers a search for a
phrase that only one page holds, and the API token never reaches the database file or any log
line.
"""

from __future__ import annotations

import base64
import logging

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, parse_fault_spec
from confluence_rag.records import SearchFilters
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.conftest import data_files, new_source, run
from tests.plugins.emulator import EmulatorFactory

# A crawl of 120 pages is only ~6 requests before retries (ids 250 at a time, bodies 25 at a
# time): the rates are high so faults are met (the draws are seeded, so the same ones each run).
# The 1,000-page chaos crawl (tests/reliability) covers scale; this one checks every record.
FAULTS = "429:0.15,503:0.1,500:0.1,drop:0.05,504"
PAGES = 120


@pytest.mark.slow
def test_crawl_120_pages_with_faults(
    fast_settings: Settings,
    emulator_factory: EmulatorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = fast_settings.model_copy(update={"max_retries": 10})
    server = emulator_factory(
        "cloud", pages=PAGES, extra_spaces={}, faults=parse_fault_spec(FAULTS)
    )
    expected = server.state.current_ids("DEMO")
    markers = server.state.markers("DEMO")
    caplog.set_level(logging.DEBUG)

    async def scenario() -> None:
        async with build_services(settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            done = await services.jobs.wait(job.id, timeout=600)
            assert done.status == "completed", done.error
            c = done.counters
            assert c["pages_listed"] == len(expected) > 110  # a few generated are not current
            assert c["pages_failed"] == 0
            assert c["pages_processed"] + c["pages_skipped"] == len(expected)
            assert c["pages_processed"] > 100
            assert c["chunks_embedded"] + c["chunks_reused"] >= c["pages_processed"]

            # Every eligible page exactly once, at its current version, with its chunks.
            versions = await services.store.page_versions(source.id)
            assert set(versions) <= expected and len(versions) == c["pages_processed"]
            for page_id, (version, deleted) in versions.items():
                assert not deleted and version == server.state.content(page_id).version
            listed = []
            while batch := await services.store.list_pages(
                source.id, limit=100, offset=len(listed)
            ):
                listed.extend(batch)
            assert sorted(p.confluence_page_id for p in listed) == sorted(versions)
            assert all(p.chunk_count >= 1 for p in listed)
            assert (
                sum(p.chunk_count for p in listed)
                == (await services.sources.get(source.id)).chunk_count
            )

            # The faults really happened, and were survived.
            faults = [r.fault for r in server.state.requests if r.fault is not None]
            assert faults, "no fault was injected"

            # A phrase that lives in one page's code block finds that page first.
            page_id, marker = next((p, m) for p, m in sorted(markers.items()) if p in versions)
            hits = await services.search.search(marker, SearchFilters(source_id=source.id))
            assert hits and hits[0].page_id.endswith(page_id)

            assert DEMO_API_TOKEN not in "\n".join(done.log)

    run(scenario())

    # The token never reaches disk or a log line (in clear or as the Basic header).
    header = base64.b64encode(f"{DEMO_EMAIL}:{DEMO_API_TOKEN}".encode()).decode()
    on_disk = data_files(settings.data_dir)
    assert DEMO_API_TOKEN.encode() not in on_disk and header.encode() not in on_disk
    assert caplog.records, "the crawl logs something"
    for record in caplog.records:
        text = record.getMessage()
        assert DEMO_API_TOKEN not in text and header not in text
