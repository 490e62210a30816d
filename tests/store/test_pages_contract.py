"""Store contract: index identity, page writes, versions, reuse, deletes (every backend)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from confluence_rag.errors import (
    IndexModelMismatch,
    InvalidInput,
    PageNotFound,
    SourceNotFound,
    StoreError,
)
from confluence_rag.records import SearchFilters
from confluence_rag.store import Store
from tests.store import builders as b

pytestmark = pytest.mark.anyio


@pytest.fixture
async def ready(store: Store) -> Store:
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    return store


async def _write(store: Store, page_id: str, texts: list[str], **doc: object) -> object:
    document = b.document(page_id, **doc)  # type: ignore[arg-type]
    parts = b.chunks(document, texts)
    return await store.write_page(b.SOURCE, document, parts, b.vectors(parts))


# --- index identity ----------------------------------------------------------------------------
async def test_index_model_is_recorded_and_a_different_one_refused(store: Store) -> None:
    assert await store.get_index_model() is None
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.ensure_index_model(b.MODEL, b.DIM)  # same again: fine
    model = await store.get_index_model()
    assert model is not None and (model.model_id, model.dimension) == (b.MODEL, b.DIM)
    await store.create_source(b.source())
    await _write(store, "1", ["text"])
    with pytest.raises(IndexModelMismatch) as info:
        await store.ensure_index_model("other-model", 384)
    message = info.value.message
    assert b.MODEL in message and "other-model" in message and "rebuild" in message
    with pytest.raises(IndexModelMismatch):
        await store.ensure_index_model(b.MODEL, b.DIM + 1)


async def test_an_index_without_chunks_may_switch_models(store: Store) -> None:
    await store.ensure_index_model("old", 4)
    await store.ensure_index_model(b.MODEL, b.DIM)
    model = await store.get_index_model()
    assert model is not None and model.model_id == b.MODEL


async def test_writing_needs_a_recorded_model_of_the_right_dimension(store: Store) -> None:
    await store.create_source(b.source())
    doc = b.document("1")
    parts = b.chunks(doc, ["x"])
    with pytest.raises(IndexModelMismatch, match="ensure_index_model"):
        await store.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    await store.ensure_index_model(b.MODEL, b.DIM)
    with pytest.raises(IndexModelMismatch, match="dimensions"):
        await store.write_page(b.SOURCE, doc, parts, b.vectors(parts, dim=b.DIM * 2))


# --- writing pages -----------------------------------------------------------------------------
async def test_write_creates_then_is_idempotent_for_the_same_version(ready: Store) -> None:
    first = await _write(ready, "1", ["alpha beta", "gamma delta"], labels=("Ops", "ops", "DB"))
    assert first.created and not first.unchanged and first.chunks_written == 2  # type: ignore[attr-defined]
    again = await _write(ready, "1", ["alpha beta", "gamma delta"], labels=("Ops", "DB"))
    assert again.unchanged and again.chunks_reused == 2 and again.chunks_written == 0  # type: ignore[attr-defined]
    page = await ready.get_page(f"{b.SOURCE}:1")
    assert page.labels == ("ops", "db")
    assert page.chunk_count == 2 and page.version == 1 and not page.is_deleted
    assert await ready.page_versions(b.SOURCE) == {"1": (1, False)}
    hits = await ready.keyword_candidates("alpha", SearchFilters(), 10)
    assert len(hits) == 1


async def test_a_new_version_replaces_chunks_and_reports_reuse(ready: Store) -> None:
    await _write(ready, "1", ["keep this", "drop this"])
    result = await _write(ready, "1", ["keep this", "brand new"], version=2, title="Deploy guide")
    assert not result.created and not result.unchanged  # type: ignore[attr-defined]
    assert (result.chunks_written, result.chunks_reused, result.chunks_removed) == (2, 1, 2)  # type: ignore[attr-defined]
    assert await ready.keyword_candidates("drop", SearchFilters(), 10) == []
    new = await ready.keyword_candidates("brand", SearchFilters(), 10)
    rows = await ready.fetch_chunks([cid for cid, _ in new])
    assert [r.text for r in rows] == ["brand new"]
    assert await ready.page_versions(b.SOURCE) == {"1": (2, False)}


async def test_title_change_updates_keyword_index(ready: Store) -> None:
    await _write(ready, "1", ["body words"], title="Zebra handbook")
    await _write(ready, "1", ["body words"], title="Giraffe handbook", version=2)
    assert await ready.keyword_candidates("zebra", SearchFilters(), 10) == []
    assert len(await ready.keyword_candidates("giraffe", SearchFilters(), 10)) == 1


async def test_page_metadata_round_trips(ready: Store) -> None:
    when = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
    await _write(
        ready,
        "42",
        ["text"],
        title="Ünïcode — title",
        space="OPS",
        page_type="blogpost",
        updated_at=when,
        markdown="# Title\n\n```python\nprint(1)\n```",
        code=[("python", "print(1)")],
    )
    page = await ready.get_page(f"{b.SOURCE}:42")
    assert page.key == f"{b.SOURCE}:42" and page.confluence_page_id == "42"
    assert (page.title, page.space_key, page.type, page.status) == (
        "Ünïcode — title",
        "OPS",
        "blogpost",
        "current",
    )
    assert page.updated_at == when
    assert page.ancestors == (("1", "Home"),)
    assert page.markdown == "# Title\n\n```python\nprint(1)\n```"
    assert page.breadcrumb == "OPS > Home > Ünïcode — title"
    assert page.url.endswith("/pages/42") and page.author == "Ada"
    assert page.code_count == 1 and page.indexed_at is not None


async def test_bad_writes_are_refused_and_change_nothing(ready: Store) -> None:
    await _write(ready, "1", ["original text"])
    doc = b.document("1", version=2)
    parts = b.chunks(doc, ["new a", "new b"])
    with pytest.raises(InvalidInput):
        await ready.write_page(b.SOURCE, doc, parts, b.vectors(parts)[:1])
    dupes = [parts[0], replace(parts[1], ordinal=0)]
    with pytest.raises(InvalidInput):
        await ready.write_page(b.SOURCE, doc, dupes, b.vectors(dupes))
    with pytest.raises(SourceNotFound):
        await ready.write_page("nope:X", doc, parts, b.vectors(parts))
    nan = b.vectors(parts)
    nan[0, 0] = np.nan
    with pytest.raises(InvalidInput):
        await ready.write_page(b.SOURCE, doc, parts, nan)
    assert await ready.page_versions(b.SOURCE) == {"1": (1, False)}
    rows = await ready.fetch_chunks(
        [c for c, _ in await ready.keyword_candidates("original", SearchFilters(), 5)]
    )
    assert [r.text for r in rows] == ["original text"]


async def test_a_failure_inside_the_transaction_rolls_everything_back(ready: Store) -> None:
    await _write(ready, "1", ["original text"])
    doc = b.document("1", version=2, title="Changed")
    parts = b.chunks(doc, ["fine", "broken"])
    parts[1] = replace(parts[1], text=None)  # type: ignore[arg-type]  # NOT NULL violation
    with pytest.raises(StoreError):
        await ready.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    page = await ready.get_page(f"{b.SOURCE}:1")
    assert (page.version, page.title, page.chunk_count) == (1, "Deploy guide", 1)
    assert len(await ready.keyword_candidates("original", SearchFilters(), 5)) == 1
    assert await ready.keyword_candidates("fine", SearchFilters(), 5) == []


async def test_pages_without_chunks_are_stored(ready: Store) -> None:
    doc = b.document("9")
    result = await ready.write_page(b.SOURCE, doc, [], np.zeros((0, b.DIM), dtype=np.float32))
    assert result.created and result.chunks_written == 0
    assert (await ready.get_page(f"{b.SOURCE}:9")).chunk_count == 0


async def test_embeddings_for_hashes_returns_stored_vectors(ready: Store) -> None:
    doc = b.document("1")
    parts = b.chunks(doc, ["one", "two"])
    vectors = b.vectors(parts)
    await ready.write_page(b.SOURCE, doc, parts, vectors)
    found = await ready.embeddings_for_hashes(b.SOURCE, [parts[0].content_hash, "c1:missing"])
    assert set(found) == {parts[0].content_hash}
    np.testing.assert_allclose(found[parts[0].content_hash], vectors[0], rtol=1e-6)
    assert found[parts[0].content_hash].dtype == np.float32
    assert set(await ready.embeddings_for_hashes(None, [parts[1].content_hash])) == {
        parts[1].content_hash
    }
    assert await ready.embeddings_for_hashes("other:X", [parts[0].content_hash]) == {}
    assert await ready.embeddings_for_hashes(b.SOURCE, []) == {}


# --- deleting ----------------------------------------------------------------------------------
async def test_soft_delete_hides_restore_brings_back(ready: Store) -> None:
    await _write(ready, "1", ["searchable words here"])
    await _write(ready, "2", ["other page"])
    when = datetime(2026, 1, 1, tzinfo=UTC)
    assert await ready.soft_delete_pages(b.SOURCE, ["1", "missing"], when) == 1
    assert await ready.soft_delete_pages(b.SOURCE, ["1"], when) == 0
    assert await ready.page_versions(b.SOURCE) == {"1": (1, True), "2": (1, False)}
    page = await ready.get_page(f"{b.SOURCE}:1")
    assert page.is_deleted and page.deleted_at == when
    assert await ready.keyword_candidates("searchable", SearchFilters(), 10) == []
    vector_ids = [c for c, _ in await ready.vector_candidates(b.axis(0), SearchFilters(), 10)]
    assert [r.confluence_page_id for r in await ready.fetch_chunks(vector_ids)] == ["2"]
    assert [p.confluence_page_id for p in await ready.list_pages(b.SOURCE)] == ["2"]
    assert await ready.count_pages(b.SOURCE) == 1

    assert await ready.restore_pages(b.SOURCE, ["1"]) == 1
    assert len(await ready.keyword_candidates("searchable", SearchFilters(), 10)) == 1
    vector_ids = [c for c, _ in await ready.vector_candidates(b.axis(0), SearchFilters(), 10)]
    assert len(await ready.fetch_chunks(vector_ids)) == 2


async def test_writing_a_deleted_page_undeletes_it(ready: Store) -> None:
    await _write(ready, "1", ["words"])
    await ready.soft_delete_pages(b.SOURCE, ["1"], datetime.now(UTC))
    result = await _write(ready, "1", ["words"])
    assert result.undeleted and not result.unchanged  # type: ignore[attr-defined]
    assert await ready.page_versions(b.SOURCE) == {"1": (1, False)}
    assert len(await ready.keyword_candidates("words", SearchFilters(), 10)) == 1


async def test_fetch_chunks_never_returns_a_deleted_page(ready: Store) -> None:
    await _write(ready, "1", ["stale candidate"])
    ids = [c for c, _ in await ready.keyword_candidates("stale", SearchFilters(), 10)]
    await ready.soft_delete_pages(b.SOURCE, ["1"], datetime.now(UTC))
    assert await ready.fetch_chunks(ids) == []
    assert await ready.fetch_chunks([999_999]) == []


async def test_purge_removes_only_old_deletions(ready: Store) -> None:
    now = datetime.now(UTC)
    for page_id in ("1", "2", "3"):
        await _write(ready, page_id, [f"page {page_id}"])
    await ready.soft_delete_pages(b.SOURCE, ["1"], now - timedelta(days=40))
    await ready.soft_delete_pages(b.SOURCE, ["2"], now - timedelta(days=1))
    assert await ready.purge_deleted(now - timedelta(days=30)) == 1
    with pytest.raises(PageNotFound):
        await ready.get_page(f"{b.SOURCE}:1")
    assert set(await ready.page_versions(b.SOURCE)) == {"2", "3"}
    assert await ready.restore_pages(b.SOURCE, ["1"]) == 0


# --- reading pages -----------------------------------------------------------------------------
async def test_list_pages_pages_through_by_title(ready: Store) -> None:
    for n, title in enumerate(["charlie", "Alpha", "bravo", "delta"]):
        await _write(ready, str(n), ["x"], title=title, space="OPS" if n % 2 else "DEV")
    titles = [p.title for p in await ready.list_pages(b.SOURCE, limit=2)]
    assert titles == ["Alpha", "bravo"]
    assert [p.title for p in await ready.list_pages(b.SOURCE, limit=2, offset=2)] == [
        "charlie",
        "delta",
    ]
    assert [p.title for p in await ready.list_pages(b.SOURCE, space="OPS")] == ["Alpha", "delta"]
    assert all(p.markdown is None for p in await ready.list_pages(b.SOURCE))
    assert await ready.count_pages(b.SOURCE, space="OPS") == 2
    with pytest.raises(SourceNotFound):
        await ready.list_pages("nope:X")


@pytest.mark.parametrize("key", ["no-colon", ":123", "source:", ""])
async def test_get_page_rejects_malformed_keys(ready: Store, key: str) -> None:
    with pytest.raises(InvalidInput):
        await ready.get_page(key)


async def test_get_page_unknown_is_not_found(ready: Store) -> None:
    with pytest.raises(PageNotFound):
        await ready.get_page(f"{b.SOURCE}:404")


async def test_page_chunks_are_the_live_pages_chunks_in_reading_order(ready: Store) -> None:
    await _write(ready, "1", ["first part", "second part", "third part"])
    await _write(ready, "2", ["other page"])
    chunks = await ready.page_chunks(f"{b.SOURCE}:1")
    assert [c.text for c in chunks] == ["first part", "second part", "third part"]
    assert [c.ordinal for c in chunks] == sorted(c.ordinal for c in chunks)
    assert {c.page_key for c in chunks} == {f"{b.SOURCE}:1"}
    with pytest.raises(PageNotFound):
        await ready.page_chunks(f"{b.SOURCE}:404")
    await ready.soft_delete_pages(b.SOURCE, ["1"], datetime.now(UTC))
    with pytest.raises(PageNotFound, match="deleted"):
        await ready.page_chunks(f"{b.SOURCE}:1")


# --- skipped pages -----------------------------------------------------------------------------
async def test_skip_records_are_kept_replaced_and_forgotten(ready: Store) -> None:
    await ready.record_skipped(b.SOURCE, "7", 3, "rules-a", "near-empty: 4 characters")
    await ready.record_skipped(b.SOURCE, "8", 1, "rules-b", "draft")
    assert await ready.skipped_versions(b.SOURCE) == {"7": (3, "rules-a"), "8": (1, "rules-b")}
    # Skipped again at a later version (or under other rules): the record is replaced.
    await ready.record_skipped(b.SOURCE, "7", 5, "rules-b", "archived")
    assert await ready.skipped_versions(b.SOURCE) == {"7": (5, "rules-b"), "8": (1, "rules-b")}
    assert await ready.forget_skipped(b.SOURCE, ["7", "unknown"]) == 1
    assert await ready.skipped_versions(b.SOURCE) == {"8": (1, "rules-b")}
    with pytest.raises(SourceNotFound):
        await ready.record_skipped("nope", "7", 1, "rules-a", "draft")
    with pytest.raises(SourceNotFound):
        await ready.skipped_versions("nope")


async def test_deleting_a_source_drops_its_skip_records(ready: Store) -> None:
    await ready.record_skipped(b.SOURCE, "7", 3, "rules-a", "draft")
    await ready.delete_source(b.SOURCE)
    await ready.create_source(b.source())
    assert await ready.skipped_versions(b.SOURCE) == {}
