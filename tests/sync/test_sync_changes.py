"""Incremental sync end to end: the emulator changed through its write API, then one sync applies
exactly those changes, reports them, and re-embeds only chunks whose text changed. Runs on
SQLite and on PostgreSQL."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

import pytest

from confluence_rag.errors import PageNotFound
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.sync.conftest import crawl, edit_body, leaf_pages, sync_now

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "postgres"])
def backend_settings(request: pytest.FixtureRequest, make_settings: Any) -> Settings:
    if request.param == "postgres":
        settings: Settings = make_settings(request.getfixturevalue("pg_database_url"))
        return settings
    return make_settings()


async def live_versions(services: Any, source_id: str) -> dict[str, int]:
    versions = await services.store.page_versions(source_id)
    return {pid: version for pid, (version, deleted) in versions.items() if not deleted}


async def test_sync_applies_exactly_the_changes(
    backend_settings: Settings,
    emulator_factory: EmulatorFactory,
    embeddings: FakeEmbeddingServer,
) -> None:
    server = emulator_factory("cloud", pages=40, extra_spaces={"OPS": 4})
    state = server.state
    async with build_services(backend_settings) as services:
        source_id = await crawl(services, server, "DEMO")
        before = await live_versions(services, source_id)
        assert len(before) > 25
        source = await services.store.get_source(source_id)
        crawled_at = source.last_sync_at
        assert crawled_at is not None and source.sync_status == "active"

        # A page trashed and synced first, so it can come back in the round under test.
        leaves = leaf_pages(server, set(before))
        comeback = leaves[0]
        state.trash(comeback)
        first = await sync_now(services, source_id)
        assert first.status == "completed", first.error
        assert first.counters["pages_deleted"] == 1
        assert first.counters["chunks_embedded"] == 0
        assert comeback not in await live_versions(services, source_id)

        # The round under test: edit 10, add 3, trash 2, restore 1, move 1 out of the space.
        others = sorted(set(before) - {comeback})
        moved = leaves[1]
        trashed = [pid for pid in leaves[2:] if pid != moved][:2]
        edited = [pid for pid in others if pid not in {moved, *trashed}][:10]
        for n, pid in enumerate(edited):
            edit_body(server, pid, f"Sync test edit number {n}: the rollout now needs approval.")
        added = [
            state.add_page(
                f"Sync test new page {n}",
                f"<p>Brand new page {n} about rotating the staging certificates safely.</p>",
            ).id
            for n in range(3)
        ]
        for pid in trashed:
            state.trash(pid)
        state.restore(comeback)
        state.move(moved, "OPS")
        texts_before = embeddings.texts_embedded

        done = await sync_now(services, source_id)
        assert done.status == "completed", done.error
        counters = done.counters
        assert counters["pages_added"] == 3
        assert counters["pages_updated"] == 10
        assert counters["pages_deleted"] == 3  # 2 trashed + 1 moved out
        assert counters["pages_restored"] == 1
        assert counters["pages_failed"] == 0
        # Only new chunk texts went to the model, and each edit left most chunks as they were.
        assert counters["chunks_embedded"] == embeddings.texts_embedded - texts_before
        assert counters["chunks_embedded"] > 0 and counters["chunks_reused"] > 0
        assert done.result["pages_deleted"] == 3 and done.result["duration_seconds"] >= 0
        # Every page the listing saw ends unchanged, processed, skipped or failed.
        assert (
            counters["pages_listed"]
            == len(state.current_ids("DEMO"))
            == sum(
                counters[name]
                for name in ("pages_unchanged", "pages_processed", "pages_skipped", "pages_failed")
            )
        )
        assert counters["pages_processed"] == 3 + 10 + 1

        after = await live_versions(services, source_id)
        expected = (set(before) - {moved, *trashed}) | set(added) | {comeback}
        assert set(after) == expected
        for pid in edited + [comeback]:
            assert after[pid] == state.content(pid).version
        unchanged = set(before) - {moved, *trashed, *edited, comeback}
        assert all(after[pid] == before[pid] for pid in unchanged)
        synced = await services.store.get_source(source_id)
        assert synced.last_sync_at is not None and synced.last_sync_at > crawled_at
        assert synced.sync_status == "active" and synced.sync_error is None

        # Nothing changed since: no embedding call at all, nothing written or deleted.
        requests_before = embeddings.requests
        idle = await sync_now(services, source_id)
        assert idle.status == "completed", idle.error
        assert embeddings.requests == requests_before
        assert idle.counters["chunks_embedded"] == 0
        for name in ("pages_added", "pages_updated", "pages_deleted", "pages_restored"):
            assert idle.counters[name] == 0, name
        assert await live_versions(services, source_id) == after


async def test_a_page_emptied_in_confluence_leaves_the_index_and_comes_back(
    backend_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    """A stored page whose new version the rules skip (here: emptied below min_page_chars)
    must not keep answering searches with its old text; filled again, it is back."""
    server = emulator_factory("cloud", pages=12)
    state = server.state
    async with build_services(backend_settings) as services:
        source_id = await crawl(services, server, "DEMO")
        before = await live_versions(services, source_id)
        emptied = leaf_pages(server, set(before))[0]
        key = f"{source_id}:{emptied}"
        assert await services.store.page_chunks(key)
        full_body = state.content(emptied).body

        state.edit_page(emptied, body="<p>tbd</p>")
        done = await sync_now(services, source_id)
        assert done.status == "completed", done.error
        assert done.counters["pages_skipped"] == 1
        assert done.counters["pages_deleted"] == 1
        assert emptied not in await live_versions(services, source_id)
        with pytest.raises(PageNotFound):
            await services.store.page_chunks(key)  # deleted: its chunks answer nothing
        assert any(f"page {emptied} deleted from the index" in line for line in done.log)

        state.edit_page(emptied, body=full_body)
        again = await sync_now(services, source_id)
        assert again.status == "completed", again.error
        assert again.counters["pages_restored"] == 1 and again.counters["pages_deleted"] == 0
        assert (await live_versions(services, source_id))[emptied] == state.content(emptied).version
        assert await services.store.page_chunks(key)


def fetched_by_id(server: Any, page_id: str) -> bool:
    """Whether a request since the log was cleared fetched ``page_id`` by id (CQL ``id in (...)``
    or, for one id, ``id = "..."``)."""
    queries = [unquote_plus(r.query) for r in server.state.requests]
    return any(("id in" in q or "id =" in q) and page_id in q for q in queries)


async def test_a_skipped_page_is_not_looked_at_again_until_it_or_the_rules_change(
    backend_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    """A page the rules skip is recorded with its version and the rules' key: the next crawl
    neither fetches nor converts it again; new rules look at it again."""
    server = emulator_factory("cloud", pages=12)
    state = server.state
    async with build_services(backend_settings) as services:
        source_id = await crawl(services, server, "DEMO")
        emptied, doomed = leaf_pages(server, set(await live_versions(services, source_id)))[:2]
        for page_id in (emptied, doomed):
            state.edit_page(page_id, body="<p>tbd</p>")
        first = await sync_now(services, source_id)
        assert first.status == "completed", first.error
        assert any(f"page {emptied} " in line and "near-empty" in line for line in first.log)
        assert set(await services.store.skipped_versions(source_id)) == {emptied, doomed}
        state.trash(doomed)  # gone from Confluence: its record goes with it

        state.requests.clear()
        job = await services.jobs.submit(source_id, "crawl")
        again = await services.jobs.wait(job.id, timeout=120)
        assert again.status == "completed", again.error
        assert not fetched_by_id(server, emptied)
        assert again.counters["pages_skipped"] == 1 and again.counters["pages_processed"] == 0
        assert any("1 skipped at that version before" in line for line in again.log)
        assert not any("near-empty" in line for line in again.log)  # not converted again

        synced = await sync_now(services, source_id)
        assert synced.counters["pages_skipped"] == 1
        assert not any("near-empty" in line for line in synced.log)
        assert set(await services.store.skipped_versions(source_id)) == {emptied}

    # Other rules (a lower min_page_chars): the page is looked at again, and now kept.
    lenient = backend_settings.model_copy(update={"min_page_chars": 1})
    async with build_services(lenient) as services:
        state.requests.clear()
        job = await services.jobs.submit(source_id, "crawl")
        services.jobs.start()
        kept = await services.jobs.wait(job.id, timeout=120)
        assert kept.status == "completed", kept.error
        assert fetched_by_id(server, emptied)
        assert kept.counters["pages_restored"] == 1
        assert (await live_versions(services, source_id))[emptied] == state.content(emptied).version
        assert await services.store.skipped_versions(source_id) == {}  # stored now: forgotten
