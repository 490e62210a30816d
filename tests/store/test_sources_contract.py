"""Store contract: sources and credentials (runs against every backend)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.errors import Conflict, InvalidInput, NotFound, SourceNotFound
from confluence_rag.records import JobRecord
from confluence_rag.store import Store
from tests.store import builders as b

pytestmark = pytest.mark.anyio


async def test_create_get_and_list_round_trip_every_field(store: Store) -> None:
    record = b.source(
        title="Dev docs",
        knowledge_type="technical",
        page_types=("page",),
        skip_rules={"skip_drafts": False, "min_page_chars": 5},
        max_pages=100,
        sync_frequency_hours=6.5,
    )
    await store.create_source(record)
    got = await store.get_source(record.id)
    assert got.id == record.id
    assert got.space_keys == ("DEV", "OPS")
    assert dict(got.space_names) == {"DEV": "Development", "OPS": "Operations"}
    assert got.title == "Dev docs"
    assert got.tags == ("team",)
    assert got.page_types == ("page",)
    assert dict(got.skip_rules) == {"skip_drafts": False, "min_page_chars": 5}
    assert got.max_pages == 100
    assert got.sync_frequency_hours == 6.5
    assert got.paused is False and got.sync_status == "active" and got.sync_error is None
    assert got.created_at is not None and got.created_at.tzinfo is not None
    assert (got.page_count, got.chunk_count) == (0, 0)
    assert [s.id for s in await store.list_sources()] == [record.id]


async def test_duplicate_id_conflicts_and_unknown_id_is_not_found(store: Store) -> None:
    await store.create_source(b.source())
    with pytest.raises(Conflict):
        await store.create_source(b.source())
    with pytest.raises(SourceNotFound):
        await store.get_source("nope:X")
    with pytest.raises(SourceNotFound):
        await store.update_source("nope:X", paused=True)


async def test_update_source_changes_only_allowed_fields(store: Store) -> None:
    await store.create_source(b.source())
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await store.update_source(
        b.SOURCE, sync_status="error", sync_error="boom", last_sync_at=when, paused=True
    )
    got = await store.get_source(b.SOURCE)
    assert (got.sync_status, got.sync_error, got.last_sync_at, got.paused) == (
        "error",
        "boom",
        when,
        True,
    )
    with pytest.raises(InvalidInput):
        await store.update_source(b.SOURCE, id="other")
    with pytest.raises(InvalidInput):
        await store.update_source(b.SOURCE, sync_status="exploded")
    assert (await store.get_source(b.SOURCE)).sync_status == "error"


async def test_list_counts_live_pages_and_chunks(store: Store) -> None:
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    for page_id, texts in (("1", ["a b", "c d"]), ("2", ["e f"])):
        doc = b.document(page_id)
        parts = b.chunks(doc, texts)
        await store.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    await store.soft_delete_pages(b.SOURCE, ["2"], datetime.now(UTC))
    (listed,) = await store.list_sources()
    assert (listed.page_count, listed.chunk_count) == (1, 2)
    # Without counts (the filter check on every search): the same source, nothing counted.
    (bare,) = await store.list_sources(counts=False)
    assert bare.id == listed.id and bare.space_keys == listed.space_keys
    assert (bare.page_count, bare.chunk_count) == (0, 0)


async def test_credentials_are_stored_replaced_and_scoped(store: Store) -> None:
    await store.create_source(b.source())
    with pytest.raises(NotFound):
        await store.get_credentials(b.SOURCE)
    await store.put_credentials(b.SOURCE, b"cipher-1")
    await store.put_credentials(b.SOURCE, b"cipher-2")
    assert await store.get_credentials(b.SOURCE) == b"cipher-2"
    with pytest.raises(SourceNotFound):
        await store.put_credentials("nope:X", b"x")
    with pytest.raises(SourceNotFound):
        await store.get_credentials("nope:X")


async def test_delete_source_removes_everything_and_cancels_its_jobs(store: Store) -> None:
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    await store.create_source(b.source("other:X", space_keys=("X",)))
    await store.put_credentials(b.SOURCE, b"secret")
    for source_id in (b.SOURCE, "other:X"):
        doc = b.document("7", code=[("python", "print('deploy')")])
        parts = b.chunks(doc, ["deploy the service with helm"])
        await store.write_page(source_id, doc, parts, b.vectors(parts))
    await store.create_job(JobRecord(id="j1", source_id=b.SOURCE, kind="crawl", status="running"))

    await store.delete_source(b.SOURCE)

    with pytest.raises(SourceNotFound):
        await store.get_source(b.SOURCE)
    with pytest.raises(SourceNotFound):
        await store.get_credentials(b.SOURCE)
    with pytest.raises(NotFound):
        await store.get_page(f"{b.SOURCE}:7")
    assert (await store.get_job("j1")).status == "cancelled"
    assert await store.running_job_for_source(b.SOURCE) is None
    # The other source is untouched, in every index.
    from confluence_rag.records import SearchFilters

    keyword = await store.keyword_candidates("helm", SearchFilters(), 10)
    rows = await store.fetch_chunks([cid for cid, _ in keyword])
    assert [r.source_id for r in rows] == ["other:X"]
    vector = await store.vector_candidates(b.axis(0), SearchFilters(), 10)
    assert [r.source_id for r in await store.fetch_chunks([c for c, _ in vector])] == ["other:X"]
    code = await store.code_candidates("deploy", SearchFilters(), 10)
    assert [r.source_id for r in await store.fetch_code([c for c, _ in code])] == ["other:X"]
    with pytest.raises(SourceNotFound):
        await store.delete_source(b.SOURCE)
