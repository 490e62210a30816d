"""Store contract: finding a live page by its space and title (every backend)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.errors import PageNotFound, SourceNotFound
from confluence_rag.store import Store
from tests.store import builders as b

pytestmark = pytest.mark.anyio

OTHER = "other.example.com:DEV"


@pytest.fixture
async def ready(store: Store) -> Store:
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    return store


async def _write(store: Store, source_id: str, page_id: str, title: str, space: str) -> None:
    document = b.document(page_id, title=title, space=space)
    parts = b.chunks(document, [f"{title} body"])
    await store.write_page(source_id, document, parts, b.vectors(parts))


async def test_a_title_is_matched_whatever_its_case(ready: Store) -> None:
    await _write(ready, b.SOURCE, "1", "Release Checklist", "DEV")
    await _write(ready, b.SOURCE, "2", "Release notes", "DEV")
    page = await ready.find_page_by_title(b.SOURCE, "DEV", "release CHECKLIST")
    assert (page.key, page.title) == (f"{b.SOURCE}:1", "Release Checklist")
    assert page.markdown is not None and page.chunk_count == 1


async def test_the_space_must_match_and_a_missing_title_is_not_found(ready: Store) -> None:
    await _write(ready, b.SOURCE, "1", "Runbook", "OPS")
    with pytest.raises(PageNotFound):
        await ready.find_page_by_title(b.SOURCE, "DEV", "Runbook")
    with pytest.raises(PageNotFound):
        await ready.find_page_by_title(b.SOURCE, "OPS", "Runbook v2")
    assert (await ready.find_page_by_title(b.SOURCE, "OPS", "runbook")).confluence_page_id == "1"


async def test_a_deleted_page_is_not_found(ready: Store) -> None:
    await _write(ready, b.SOURCE, "1", "Old plan", "DEV")
    await ready.soft_delete_pages(b.SOURCE, ["1"], datetime.now(UTC))
    with pytest.raises(PageNotFound):
        await ready.find_page_by_title(b.SOURCE, "DEV", "Old plan")
    await ready.restore_pages(b.SOURCE, ["1"])
    assert (await ready.find_page_by_title(b.SOURCE, "DEV", "old plan")).title == "Old plan"


async def test_without_a_source_the_first_created_source_wins(ready: Store) -> None:
    await ready.create_source(b.source(OTHER))
    await _write(ready, OTHER, "7", "Onboarding", "DEV")
    await _write(ready, b.SOURCE, "1", "Onboarding", "DEV")
    page = await ready.find_page_by_title(None, "DEV", "ONBOARDING")
    assert page.source_id == b.SOURCE  # created before OTHER
    assert (await ready.find_page_by_title(OTHER, "DEV", "onboarding")).source_id == OTHER
    await ready.delete_source(b.SOURCE)
    assert (await ready.find_page_by_title(None, "DEV", "onboarding")).source_id == OTHER


async def test_an_unknown_source_is_reported(ready: Store) -> None:
    with pytest.raises(SourceNotFound):
        await ready.find_page_by_title("nowhere:X", "DEV", "Anything")
