"""The MCP search on the real offline model (MiniLM): a question worded like a page's title finds
that page, and the same index opened with another model is a clear tool error.

The other MCP tests embed with a fast fake; this one proves the semantic half works end to end
through the tools. Small on purpose: the model embeds only a few chunks per second on 2 cores.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.ingest.sources import NewSource
from confluence_rag.mcp.server import create_mcp_server
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from mcp import Client
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.mcp.conftest import index_settings
from tests.mcp.helpers import ok, tool_error
from tests.plugins.emulator import EmulatorFactory


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Embedder]:
    embedder = create_embedder(
        Settings(data_dir=tmp_path_factory.mktemp("minilm"), embedder="local")
    )
    yield embedder
    embedder.close()


@pytest.mark.slow
@pytest.mark.model
def test_semantic_search_with_minilm(
    emulator_factory: EmulatorFactory, isolated_env: Path, minilm: Embedder
) -> None:
    server = emulator_factory("cloud", pages=4, extra_spaces={})
    settings = Settings(data_dir=isolated_env, embedder="local")

    async def main() -> None:
        async with build_services(settings, embedder=minilm) as services:
            source, job = await services.sources.add(
                NewSource(
                    confluence_url=server.site_url,
                    flavour="cloud",
                    user_email=DEMO_EMAIL,
                    api_token=DEMO_API_TOKEN,
                    space_key="DEMO",
                )
            )
            assert job is not None
            services.jobs.start()
            assert (await services.jobs.wait(job.id, timeout=600)).status == "completed"
            pages = await services.store.list_pages(source.id)
            page = next(p for p in pages if p.type == "page" and p.title != "Demo Home")

            async with Client(create_mcp_server(services)) as client:
                data, text = await ok(
                    client,
                    "rag_search_knowledge_base",
                    {"query": f"where is the {page.title.lower()}?", "return_mode": "pages"},
                )
                top = data["results"][0]
                assert top["page_id"] == page.key, [r["title"] for r in data["results"]]
                assert top["match_type"] in ("semantic", "both")
                assert top["weak"] is False
                assert page.title in text and page.url in text
                # Nonsense finds only the nearest vectors: every hit says it is weak.
                data, text = await ok(
                    client, "rag_search_knowledge_base", {"query": "zzqxv plorkified"}
                )
                assert data["count"] >= 1 and all(hit["weak"] for hit in data["results"])
                assert "weak match" in text

    asyncio.run(main())

    # The same index, searched with another model: a tool error naming both, not garbage.
    with FakeEmbeddingServer(dimension=16) as fake:
        other = index_settings(isolated_env, fake.settings_env())

        async def mismatch() -> None:
            async with build_services(other) as services:
                async with Client(create_mcp_server(services)) as client:
                    text = await tool_error(
                        client, "rag_search_knowledge_base", {"query": "deployment"}
                    )
                    assert "all-MiniLM-L6-v2" in text and "fake-sha256" in text

        asyncio.run(mismatch())
