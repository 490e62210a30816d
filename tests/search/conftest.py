"""Fixtures shared by the search tests."""

from __future__ import annotations

import pytest

from confluence_rag.search.service import SearchService
from confluence_rag.settings import Settings
from confluence_rag.store import Store
from tests.search.hash_embedder import HashEmbedder
from tests.search.indexed import index_pages


@pytest.fixture
async def service(store: Store, settings: Settings) -> SearchService:
    embedder = HashEmbedder()
    await index_pages(store, embedder)
    return SearchService(store, embedder, settings)
