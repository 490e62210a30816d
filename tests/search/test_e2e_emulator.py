"""End to end with every real part: emulator over a socket -> client -> converter -> chunker ->
the local MiniLM -> SQLite store -> SearchService. A phrase found only in one page's code block
finds that page first."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from confluence_rag.confluence.auth import SiteAuth
from confluence_rag.confluence.client import ConfluenceClient
from confluence_rag.confluence.site import normalise_site_url
from confluence_rag.content.context import ConversionContext
from confluence_rag.content.metadata import should_skip, to_document
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from confluence_rag.index.chunking import chunk_document
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.records import SearchFilters, SourceRecord
from confluence_rag.search.service import SearchService
from confluence_rag.settings import Settings
from confluence_rag.store.sqlite import SQLiteStore
from tests.plugins.emulator import EmulatorFactory

pytestmark = [pytest.mark.anyio, pytest.mark.model]

SOURCE = "emulator:DEMO"


@pytest.fixture(scope="module")
def minilm() -> Iterator[Embedder]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        embedder = create_embedder(Settings(data_dir=Path(tmp), embedder="local"))
        yield embedder
        embedder.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_30_emulator_pages_a_code_phrase_finds_its_page_first(
    settings: Settings, emulator_factory: EmulatorFactory, minilm: Embedder
) -> None:
    server = emulator_factory("cloud", pages=30, extra_spaces={})
    markers = server.state.markers("DEMO")
    assert len(markers) >= 10
    site = normalise_site_url(server.site_url, "cloud")
    context = ConversionContext(base_url=site.api_base)
    stored: set[str] = set()
    async with SQLiteStore(settings.sqlite_path) as store:
        await store.ensure_index_model(minilm.model_id, minilm.dimension)
        await store.create_source(
            SourceRecord(id=SOURCE, site_url=site.api_base, space_keys=("DEMO",))
        )
        async with ConfluenceClient(
            site.api_base, SiteAuth.cloud(DEMO_EMAIL, DEMO_API_TOKEN), settings=settings
        ) as client:
            async for page in client.iter_pages("DEMO"):
                document = to_document(page, "Demo Space", context)
                if should_skip(page, document.markdown, settings):
                    continue
                chunks = chunk_document(document, minilm.count_tokens)
                vectors = await minilm.embed_documents([c.embed_text for c in chunks])
                await store.write_page(SOURCE, document, chunks, vectors)
                stored.add(page.id)
        assert len(stored) >= 25

        service = SearchService(store, minilm, settings)
        checked = 0
        for page_id, phrase in sorted(markers.items()):
            if page_id not in stored:
                continue
            hits = await service.search(phrase, limit=5)
            assert hits, phrase
            assert hits[0].page_id == f"{SOURCE}:{page_id}", (phrase, [h.title for h in hits])
            assert hits[0].match_type in ("keyword", "both")
            code = await service.search_code(phrase, SearchFilters(), limit=3)
            assert code and code[0].page_id == f"{SOURCE}:{page_id}"
            checked += 1
        assert checked >= 10

        # semantic-only search still answers with a page of this space
        hits = await service.search("how do we deploy and monitor services", retriever="semantic")
        assert hits and all(h.source_id == SOURCE for h in hits)
