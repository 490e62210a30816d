"""Searches while pages are being rewritten see whole pages: never half of an old and a new set."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict

import pytest

from confluence_rag.records import SearchFilters
from confluence_rag.store.postgres import PostgresStore
from tests.store import builders as b

pytestmark = pytest.mark.anyio

PAGES = 6
CHUNKS_PER_PAGE = 5


async def _write_version(store: PostgresStore, page: int, version: int) -> None:
    doc = b.document(str(page), version=version, title=f"Page {page}")
    texts = [f"consistency marker v{version} part {i}" for i in range(CHUNKS_PER_PAGE)]
    chunks = b.chunks(doc, texts)
    await store.write_page(b.SOURCE, doc, chunks, b.vectors(chunks))


async def test_search_during_writes_sees_consistent_pages(pg_store: PostgresStore) -> None:
    for page in range(PAGES):
        await _write_version(pg_store, page, 1)
    stop = asyncio.Event()

    async def writer() -> int:
        version = 1
        while not stop.is_set():
            version += 1
            for page in range(PAGES):
                await _write_version(pg_store, page, version)
        return version

    checks = 0

    async def reader() -> None:
        nonlocal checks
        for _ in range(60):
            hits = await pg_store.keyword_candidates("consistency marker", SearchFilters(), 1000)
            rows = await pg_store.fetch_chunks([cid for cid, _ in hits])
            # One statement = one snapshot: every page contributes all its chunks exactly once.
            assert len(hits) == PAGES * CHUNKS_PER_PAGE
            versions: dict[str, set[str]] = defaultdict(set)
            for row in rows:
                match = re.search(r"v(\d+)", row.text)
                assert match is not None
                versions[row.confluence_page_id].add(match.group(1))
            # Fetched chunks of one page all come from one version of it.
            assert all(len(found) == 1 for found in versions.values()), versions
            vector_hits = await pg_store.vector_candidates(b.axis(0), SearchFilters(), 1000)
            assert len(vector_hits) == PAGES * CHUNKS_PER_PAGE
            checks += 1

    write_task = asyncio.create_task(writer())
    try:
        await reader()
    finally:
        stop.set()
        last_version = await write_task
    assert checks == 60 and last_version > 2
    pages = await pg_store.list_pages(b.SOURCE)
    assert len(pages) == PAGES and all(p.chunk_count == CHUNKS_PER_PAGE for p in pages)
