"""What a sync must never do: miss an edit because of the site's time zone, delete pages on a
listing that failed part-way, or change the index when it fails."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from confluence_rag.emulator import FaultRule
from confluence_rag.emulator.config import LimitCaps
from confluence_rag.services import build_services
from tests.plugins.emulator import EmulatorFactory
from tests.sync.conftest import crawl, edit_body, sync_now

pytestmark = pytest.mark.anyio

SITE_ZONE = "America/Los_Angeles"
# The listing's own request, then every retry of it (CONFLUENCE_RAG_MAX_RETRIES=2): 3 answers.
LISTING_ATTEMPTS = 3


async def live_versions(services: Any, source_id: str) -> dict[str, int]:
    versions = await services.store.page_versions(source_id)
    return {pid: version for pid, (version, deleted) in versions.items() if not deleted}


async def test_edit_at_2350_site_time_is_not_missed(
    make_settings: Any, emulator_factory: EmulatorFactory
) -> None:
    """Last sync at 23:40 in Los Angeles (07:40 UTC the next day); a page edited at 23:50 Los
    Angeles time. A window written in UTC ("07:40") would be read by the site as 07:40 *its*
    time and miss the edit. No overlap, and the id listing fails, so only a window in the site's
    zone can find it."""
    settings = make_settings(
        CONFLUENCE_RAG_SITE_TIMEZONE=SITE_ZONE, CONFLUENCE_RAG_SYNC_OVERLAP_HOURS="0"
    )
    server = emulator_factory("cloud", pages=20, extra_spaces={}, timezone=SITE_ZONE)
    state = server.state
    async with build_services(settings) as services:
        source_id = await crawl(services, server)
        before = await live_versions(services, source_id)
        last_sync = datetime(2026, 11, 21, 7, 40, tzinfo=UTC)  # 2026-11-20 23:40 in LA
        await services.store.update_source(source_id, last_sync_at=last_sync)
        # Every other page was last modified long before: only the edit is in the window.
        state.set_now(datetime(2026, 11, 21, 7, 50, tzinfo=UTC))  # 23:50 in LA
        page_id = sorted(before)[3]
        edit_body(server, page_id, "Edited late in the evening, site time.")
        # The change window (one request) answers; the id listing after it fails for good.
        state.add_fault(FaultRule("500", path="/content/search", after=1, times=LISTING_ATTEMPTS))

        done = await sync_now(services, source_id)
        assert done.status == "completed", done.error
        assert done.counters["pages_updated"] == 1
        assert done.counters["pages_deleted"] == 0
        assert any("warning" in line and "no page is deleted" in line for line in done.log)
        after = await live_versions(services, source_id)
        assert after[page_id] == before[page_id] + 1 == state.content(page_id).version
        assert set(after) == set(before)
        # The window the site was asked for is the site's local 23:40.
        queries = [r.query for r in state.requests if "lastmodified" in r.query]
        assert queries and all("2026-11-20+23%3A40" in q for q in queries), queries


async def test_id_listing_failing_half_way_deletes_nothing(
    make_settings: Any, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=40, extra_spaces={}, caps=LimitCaps.uniform(10))
    state = server.state
    async with build_services(make_settings()) as services:
        source_id = await crawl(services, server)
        before = await live_versions(services, source_id)
        gone = sorted(before)[:3]
        for page_id in gone:
            state.trash(page_id)
        # The (empty) change window and the id listing's first request answer; the listing's
        # second request fails on every retry.
        state.add_fault(FaultRule("500", path="/content/search", after=2, times=LISTING_ATTEMPTS))

        done = await sync_now(services, source_id)
        assert done.status == "completed", done.error
        assert done.counters["pages_deleted"] == 0
        assert any("listing space DEMO stopped after 10 pages" in line for line in done.log)
        assert await live_versions(services, source_id) == before

        # The next sync with a listing that reaches its end deletes exactly those pages.
        again = await sync_now(services, source_id)
        assert again.status == "completed", again.error
        assert again.counters["pages_deleted"] == 3
        assert set(await live_versions(services, source_id)) == set(before) - set(gone)


async def test_failed_sync_leaves_index_and_last_sync_as_they_were(
    make_settings: Any, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=20, extra_spaces={})
    state = server.state
    async with build_services(make_settings()) as services:
        source_id = await crawl(services, server)
        before = await live_versions(services, source_id)
        crawled = await services.store.get_source(source_id)
        state.trash(sorted(before)[0])
        edit_body(server, sorted(before)[1], "An edit the failed sync must not half-apply.")
        # Confluence's search fails for good: the change window cannot be read.
        state.add_fault(FaultRule("500", path="/content/search"))

        done = await sync_now(services, source_id)
        assert done.status == "failed"
        assert done.error
        assert done.counters["pages_deleted"] == 0
        assert await live_versions(services, source_id) == before
        source = await services.store.get_source(source_id)
        assert source.last_sync_at == crawled.last_sync_at
        assert source.sync_status == "error" and source.sync_error == done.error

        state.clear_faults()
        recovered = await sync_now(services, source_id)
        assert recovered.status == "completed", recovered.error
        assert recovered.counters["pages_deleted"] == 1
        assert recovered.counters["pages_updated"] == 1
        source = await services.store.get_source(source_id)
        assert source.sync_status == "active" and source.sync_error is None
        assert source.last_sync_at is not None and crawled.last_sync_at is not None
        assert source.last_sync_at > crawled.last_sync_at
