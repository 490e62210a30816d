"""Finding a page from a link: ids in Cloud and Data Center URLs, and Data Center's id-less
``/display/KEY/Title`` links resolved by space and title (a real Data Center crawl), through
``services.pages`` as every surface reads pages, and through the MCP tool that uses it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from confluence_rag.emulator import DEMO_PAT
from confluence_rag.errors import InvalidInput, PageNotFound
from confluence_rag.ingest.sources import NewSource
from confluence_rag.mcp.server import create_mcp_server
from confluence_rag.pages import display_link, page_id_from_url
from confluence_rag.services import build_services
from mcp import Client
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.mcp.conftest import index_settings
from tests.mcp.helpers import ok, tool_error
from tests.plugins.emulator import EmulatorFactory


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://x.atlassian.net/wiki/spaces/DEV/pages/123456/Deploy+Guide", "123456"),
        ("https://x.atlassian.net/wiki/spaces/DEV/pages/123456", "123456"),
        ("https://x.atlassian.net/wiki/spaces/DEV/pages/123456/Deploy#Rollback", "123456"),
        ("https://x.atlassian.net/wiki/spaces/DEV/blog/2024/01/02/777/News", "777"),
        ("https://wiki.corp/pages/viewpage.action?pageId=4242", "4242"),
        ("https://wiki.corp/confluence/pages/viewpage.action?spaceKey=D&pageId=99", "99"),
        ("https://wiki.corp/display/DEV/Deploy+Guide", None),
        ("https://wiki.corp/display/DEV/2024/01/02/News", None),
        ("https://wiki.corp/pages/viewpage.action?pageId=abc", None),
        ("https://x.atlassian.net/wiki/spaces/DEV/pages/edit-v2/12", None),
    ],
)
def test_page_id_from_url(url: str, expected: str | None) -> None:
    assert page_id_from_url(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://wiki.corp/display/DEV/Deploy+Guide", ("DEV", "Deploy Guide")),
        ("https://wiki.corp/confluence/display/dev/Deploy%20Guide/", ("DEV", "Deploy Guide")),
        ("https://wiki.corp/display/DEV/2024/01/02/Release+News", ("DEV", "Release News")),
        ("https://wiki.corp/display/~jane.doe/My+Notes", ("~jane.doe", "My Notes")),
        ("https://wiki.corp/display/DEV", None),
        ("https://x.atlassian.net/wiki/spaces/DEV/pages/1/Title", None),
    ],
)
def test_display_link(url: str, expected: tuple[str, str] | None) -> None:
    assert display_link(url) == expected


def test_data_center_links_without_an_id(
    emulator_factory: EmulatorFactory, isolated_env: Path
) -> None:
    server = emulator_factory("datacenter", pages=6, extra_spaces={})
    with FakeEmbeddingServer(dimension=16) as embeddings:
        settings = index_settings(isolated_env, embeddings.settings_env())

        async def main() -> None:
            async with build_services(settings) as services:
                source, job = await services.sources.add(
                    NewSource(
                        confluence_url=server.site_url,
                        flavour="datacenter",
                        api_token=DEMO_PAT,
                        space_key="DEMO",
                    )
                )
                assert job is not None
                services.jobs.start()
                assert (await services.jobs.wait(job.id, timeout=120)).status == "completed"
                pages = await services.store.list_pages(source.id)
                page = next(p for p in pages if "/display/" in p.url)
                assert page_id_from_url(page.url) is None

                async with Client(create_mcp_server(services)) as client:
                    data, text = await ok(client, "rag_read_full_page", {"url": page.url})
                    assert data["page_id"] == page.key and page.title in text
                    # The same link with spaces encoded differently, and a trailing slash.
                    variant = page.url.replace("+", "%20") + "/"
                    data, _ = await ok(client, "rag_read_full_page", {"url": variant})
                    assert data["page_id"] == page.key
                    # A viewpage link with the id.
                    site = server.site_url.rstrip("/")
                    by_id = f"{site}/pages/viewpage.action?pageId={page.confluence_page_id}"
                    data, _ = await ok(client, "rag_read_full_page", {"url": by_id})
                    assert data["page_id"] == page.key
                    missing = f"{site}/display/DEMO/No+Such+Page"
                    text = await tool_error(client, "rag_read_full_page", {"url": missing})
                    assert "no indexed page matches" in text

                # The same lookups as the service every surface uses.
                found = await services.pages.by_title(page.title.upper(), "demo", source.id)
                assert found.key == page.key
                assert (await services.pages.by_title(page.title, "DEMO")).key == page.key
                assert (await services.pages.find(url=page.url)).key == page.key
                assert (await services.pages.find(page.confluence_page_id)).key == page.key
                with pytest.raises(PageNotFound):
                    await services.pages.by_title("No Such Page", "DEMO")
                with pytest.raises(PageNotFound, match="no indexed source is on the site"):
                    await services.pages.find(url="https://elsewhere.example/display/DEMO/X")
                with pytest.raises(InvalidInput, match="not a page id"):
                    await services.pages.find("not-a-key")
                listed = await services.pages.list(source.id, "DEMO", limit=100)
                assert await services.pages.count(source.id, "DEMO") == len(listed) >= 6

        asyncio.run(main())
