"""Searches running in a loop while a sync rewrites pages: an existing page is always found (its
old version or its new one, never a gap), a deleted page never is."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from confluence_rag.records import SearchFilters
from confluence_rag.services import Services, build_services
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.sync.conftest import JOB_TIMEOUT, crawl, edit_body, leaf_pages

pytestmark = pytest.mark.anyio


async def found(services: Services, source_id: str, marker: str) -> set[str]:
    hits = await services.search.search(
        marker, SearchFilters(source_id=source_id), limit=5, retriever="keyword"
    )
    return {hit.page_id.rpartition(":")[2] for hit in hits}


async def test_searches_during_a_sync_never_see_a_gap_or_a_deleted_page(
    make_settings: Any, emulator_factory: EmulatorFactory, embeddings: FakeEmbeddingServer
) -> None:
    # Small batches: the sync rewrites pages over many model calls.
    settings = make_settings(CONFLUENCE_RAG_EMBED_BATCH_SIZE="2")
    server = emulator_factory("cloud", pages=40, extra_spaces={})
    state = server.state
    async with build_services(settings) as services:
        source_id = await crawl(services, server)
        stored = await services.store.page_versions(source_id)
        markers = {pid: m for pid, m in sorted(state.markers("DEMO").items()) if pid in stored}
        assert len(markers) >= 16
        # Leaves are deleted: trashing a parent would move its children (new breadcrumbs).
        leaves = leaf_pages(server, set(markers))
        deleted, trashed_now = leaves[0], leaves[1:3]
        edited = [pid for pid in markers if pid not in {deleted, *trashed_now}][:12]
        for pid in markers:
            assert pid in await found(services, source_id, markers[pid])

        state.trash(deleted)
        job = await services.jobs.submit(source_id, "sync")
        first = await services.jobs.wait(job.id, timeout=JOB_TIMEOUT)
        assert first.status == "completed" and first.counters["pages_deleted"] == 1

        for n, pid in enumerate(edited):
            edit_body(server, pid, f"Second thoughts, revision {n}, about the on-call rota.")
        for pid in trashed_now:
            state.trash(pid)
        # The sync embeds two batches, then waits: the searches below provably run while it is
        # half-way through rewriting pages; the model is released after three of them.
        embeddings.hold_after(2)
        job = await services.jobs.submit(source_id, "sync")
        await asyncio.to_thread(embeddings.wait_held, 1)
        searches = 0
        while (await services.jobs.get(job.id)).status in ("queued", "running"):
            if searches == 3:
                embeddings.release()
            pid = edited[searches % len(edited)]
            # The index never has a gap: the page is stored, live and has chunks at every moment
            # (old version or new), because the sync replaces it in one transaction; and search
            # re-reads when a rewrite replaced chunk ids between its candidate and row reads.
            page = await services.store.get_page(f"{source_id}:{pid}")
            assert not page.is_deleted and page.chunk_count > 0, page
            hits = await found(services, source_id, markers[pid])
            assert pid in hits, f"edited page {pid} missing mid-sync (search {searches}): {hits}"
            hits = await found(services, source_id, markers[deleted])
            assert deleted not in hits, f"deleted page {deleted} found mid-sync"
            searches += 1
            await asyncio.sleep(0)
        done = await services.jobs.get(job.id)
        assert done.status == "completed", done.error
        assert done.counters["pages_updated"] == len(edited)
        assert done.counters["pages_deleted"] == len(trashed_now)
        assert searches >= 3, f"only {searches} searches overlapped the sync"
        for pid in edited:
            assert pid in await found(services, source_id, markers[pid])
        for pid in [deleted, *trashed_now]:
            assert pid not in await found(services, source_id, markers[pid])
