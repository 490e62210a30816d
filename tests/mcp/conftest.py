"""A real index for the MCP tests, built once per session and copied for each test.

The index is crawled from a live Confluence emulator (30 pages in DEMO, 6 in OPS) through the
real ingest pipeline into a real SQLite file. Embeddings come from the OpenAI-compatible fake in
``tests/ingest/fake_embeddings.py`` (a real HTTP server, deterministic vectors): the local model
embeds only a few chunks per second on this shared machine, and these tests are about the MCP
surface, not about semantic quality. Keyword search makes every lookup here exact: each page
holds a unique marker word in a code block.

Each test gets its own copy of the data dir (a sync started by one test cannot leak into
another); the emulator and the embeddings server stay up for the session because
``rag_sync_source`` talks to them.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorConfig, EmulatorServer
from confluence_rag.ingest.sources import NewSource
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer


@dataclass(frozen=True)
class MarkedPage:
    """A stored page and the unique marker word its code block holds."""

    key: str
    confluence_id: str
    title: str
    url: str
    marker: str
    language: str
    space: str


@dataclass(frozen=True)
class McpIndex:
    template: Path
    env: dict[str, str]  # embedder settings, as CONFLUENCE_RAG_* variables
    emulator: EmulatorServer
    source_id: str
    page_count: int
    ops_count: int
    marked: tuple[MarkedPage, ...]
    longest: str  # key of the page with the most Markdown


def index_settings(data_dir: Path, env: dict[str, str]) -> Settings:
    """Settings for ``data_dir`` with the embedder of the index (explicit, not from env)."""
    fields = {name.removeprefix("CONFLUENCE_RAG_").lower(): value for name, value in env.items()}
    return Settings(data_dir=data_dir, **fields)  # type: ignore[arg-type]


async def _build(settings: Settings, server: EmulatorServer) -> McpIndex:
    async with build_services(settings) as services:
        source, job = await services.sources.add(
            NewSource(
                confluence_url=server.site_url,
                flavour="cloud",
                user_email=DEMO_EMAIL,
                api_token=DEMO_API_TOKEN,
                space_keys=("DEMO", "OPS"),
            )
        )
        assert job is not None
        services.jobs.start()
        done = await services.jobs.wait(job.id, timeout=300)
        assert done.status == "completed", done.error
        pages = await services.store.list_pages(source.id, limit=500)
        assert pages, "the crawl stored no page"
        by_id = {page.confluence_page_id: page for page in pages}
        markers = server.state.markers()
        marked = []
        for confluence_id, marker in sorted(markers.items()):
            page = by_id.get(confluence_id)
            if page is None:
                continue
            full = await services.store.get_page(page.key)
            language = _language_of(full.markdown or "", marker)
            marked.append(
                MarkedPage(
                    key=page.key,
                    confluence_id=confluence_id,
                    title=page.title,
                    url=page.url,
                    marker=marker,
                    language=language,
                    space=page.space_key,
                )
            )
        lengths = {p.key: len((await services.store.get_page(p.key)).markdown or "") for p in pages}
        return McpIndex(
            template=settings.data_dir,
            env={},
            emulator=server,
            source_id=source.id,
            page_count=len(pages),
            ops_count=sum(1 for page in pages if page.space_key == "OPS"),
            marked=tuple(marked),
            longest=max(lengths, key=lambda key: lengths[key]),
        )


def _language_of(markdown: str, marker: str) -> str:
    """The fence language of the code block holding ``marker``."""
    before = markdown[: markdown.index(marker)]
    fence = before.rfind("```")
    return before[fence + 3 :].split("\n", 1)[0].strip()


@pytest.fixture(scope="session")
def mcp_index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpIndex]:
    config = EmulatorConfig(flavour="cloud", pages=30, extra_spaces={"OPS": 6})
    with FakeEmbeddingServer(dimension=32) as embeddings, EmulatorServer(config) as server:
        env = embeddings.settings_env()
        template = tmp_path_factory.mktemp("mcp-index")
        built = asyncio.run(_build(index_settings(template, env), server))
        yield McpIndex(**{**built.__dict__, "env": env})


@pytest.fixture
def mcp_settings(
    mcp_index: McpIndex, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A private copy of the index in this test's data dir; the environment points at it too,
    so a subprocess (``confluence-rag mcp``) opens the same files with the same embedder."""
    shutil.copytree(mcp_index.template, isolated_env)
    for name, value in mcp_index.env.items():
        monkeypatch.setenv(name, value)
    return index_settings(isolated_env, mcp_index.env)
