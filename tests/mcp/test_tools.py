"""Every tool, in-process through the SDK's client, on an index crawled from the emulator."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from confluence_rag.mcp.server import create_mcp_server
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings
from mcp import Client
from tests.mcp.conftest import McpIndex, index_settings
from tests.mcp.helpers import MARKER_HITS, TOOLS, exercise, hit_for, ok, tool_error

Scenario = Callable[[Client, Services], Awaitable[None]]


def run_with_client(
    settings: Settings, scenario: Scenario, *, jobs: bool = False, mode: str = "auto"
) -> None:
    """Run ``scenario`` against an in-process server. ``auto`` dispatches requests directly;
    ``legacy`` runs the initialize handshake and JSON-RPC over the SDK's in-memory streams."""

    async def main() -> None:
        async with build_services(settings) as services:
            if jobs:
                services.jobs.start()
            async with Client(create_mcp_server(services), mode=mode) as client:
                await scenario(client, services)

    asyncio.run(main())


def test_tools_are_listed_with_typed_bounded_parameters(mcp_settings: Settings) -> None:
    async def scenario(client: Client, services: Services) -> None:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert sorted(tools) == sorted(TOOLS)
        for tool in tools.values():
            assert tool.description and len(tool.description) > 80, tool.name
            assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
            for name, spec in tool.input_schema.get("properties", {}).items():
                assert spec.get("description"), f"{tool.name}.{name} has no description"
        search = tools["rag_search_knowledge_base"].input_schema
        assert search["required"] == ["query"]
        props = search["properties"]
        assert set(props) == {"query", "source_id", "space", "labels", "match_count", "return_mode"}
        assert props["match_count"]["minimum"] == 1 and props["match_count"]["maximum"] == 50
        assert props["match_count"]["default"] == 5
        assert props["return_mode"]["enum"] == ["chunks", "pages"]
        code = tools["rag_search_code_examples"].input_schema["properties"]
        assert set(code) == {"query", "source_id", "language", "match_count"}
        listing = tools["rag_list_pages_for_source"].input_schema
        assert listing["required"] == ["source_id"]
        assert listing["properties"]["limit"]["maximum"] == 200
        assert listing["properties"]["offset"]["minimum"] == 0
        read = tools["rag_read_full_page"].input_schema
        assert set(read["properties"]) == {"page_id", "url", "offset", "max_chars"}
        assert not read.get("required")
        assert tools["rag_sync_source"].input_schema["required"] == ["source_id"]
        assert tools["rag_get_progress"].input_schema["required"] == ["progress_id"]
        assert tools["rag_get_available_sources"].annotations.read_only_hint is True
        assert tools["rag_sync_source"].annotations.read_only_hint is False

    run_with_client(mcp_settings, scenario)


def test_every_tool_over_the_in_memory_json_rpc_session(
    mcp_settings: Settings, mcp_index: McpIndex
) -> None:
    async def scenario(client: Client, services: Services) -> None:
        assert client.server_info is not None and client.server_info.name == "confluence-rag"
        assert "rag_search_knowledge_base" in (client.instructions or "")
        await exercise(client, mcp_index)

    run_with_client(mcp_settings, scenario, jobs=True, mode="legacy")


def test_available_sources(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    async def scenario(client: Client, services: Services) -> None:
        data, text = await ok(client, "rag_get_available_sources")
        assert data["count"] == 1
        source = data["sources"][0]
        assert source["source_id"] == mcp_index.source_id
        assert source["page_count"] == mcp_index.page_count
        assert {s["key"] for s in source["spaces"]} == {"DEMO", "OPS"}
        assert source["last_sync_at"]
        assert mcp_index.source_id in text and "Demo Space" in text
        assert f"{mcp_index.page_count} pages" in text

    run_with_client(mcp_settings, scenario)


def test_search_finds_the_page_with_title_and_url(
    mcp_settings: Settings, mcp_index: McpIndex
) -> None:
    page = mcp_index.marked[0]

    async def scenario(client: Client, services: Services) -> None:
        data, text = await ok(
            client, "rag_search_knowledge_base", {"query": page.marker, "match_count": MARKER_HITS}
        )
        first = hit_for(data["results"], page.key, page.marker)
        assert first["title"] == page.title and first["url"] == page.url
        assert page.marker in first["content"]
        assert first["breadcrumb"].startswith(("Demo Space", "Operations", first["breadcrumb"]))
        assert data["count"] == len(data["results"]) <= MARKER_HITS
        assert page.title in text and page.url in text and page.key in text

        # Pages mode: one hit per page, scoped to the source.
        data, text = await ok(
            client,
            "rag_search_knowledge_base",
            {
                "query": "deployment checklist",
                "source_id": mcp_index.source_id,
                "return_mode": "pages",
                "match_count": 8,
            },
        )
        ids = [hit["page_id"] for hit in data["results"]]
        assert ids and len(ids) == len(set(ids)) <= 8
        assert data["return_mode"] == "pages" and "pages mode" in text

    run_with_client(mcp_settings, scenario)


def test_search_filters_by_space_and_labels(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    async def scenario(client: Client, services: Services) -> None:
        data, _ = await ok(
            client,
            "rag_search_knowledge_base",
            {"query": "service update", "space": "ops", "match_count": 20},
        )
        assert data["results"] and {hit["space"] for hit in data["results"]} == {"OPS"}

        # Blank optional filters (as assistants often send them) mean no filter.
        data, _ = await ok(
            client,
            "rag_search_knowledge_base",
            {"query": "service update", "source_id": "", "space": " ", "labels": [""]},
        )
        assert data["count"] == 5

        pages = await services.store.list_pages(mcp_index.source_id, limit=500)
        label = next(label for page in pages for label in page.labels)
        data, _ = await ok(
            client,
            "rag_search_knowledge_base",
            {"query": "update", "labels": [label.upper()], "match_count": 50},
        )
        assert data["results"]
        assert all(label in hit["labels"] for hit in data["results"])

    run_with_client(mcp_settings, scenario)


def test_code_search(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    page = next(p for p in mcp_index.marked if p.language)

    async def scenario(client: Client, services: Services) -> None:
        data, text = await ok(
            client,
            "rag_search_code_examples",
            {"query": page.marker, "source_id": mcp_index.source_id, "match_count": 3},
        )
        first = hit_for(data["results"], page.key, page.marker, "code")
        assert first["language"] == page.language and first["url"] == page.url
        assert page.title in text and page.url in text and f"```{page.language}" in text

        data, _ = await ok(
            client,
            "rag_search_code_examples",
            {"query": page.marker, "language": page.language.upper()},
        )
        assert data["results"] and {r["language"] for r in data["results"]} == {page.language}

    run_with_client(mcp_settings, scenario)


def test_list_pages_in_batches(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    async def scenario(client: Client, services: Services) -> None:
        args: dict[str, Any] = {"source_id": mcp_index.source_id, "limit": 10}
        seen: list[str] = []
        offset: int | None = 0
        while offset is not None:
            data, text = await ok(client, "rag_list_pages_for_source", {**args, "offset": offset})
            assert data["total"] == mcp_index.page_count
            seen.extend(page["page_id"] for page in data["pages"])
            for page in data["pages"]:
                assert page["title"] in text and page["url"] in text
            if data["next_offset"] is not None:
                assert f"offset={data['next_offset']}" in text
            offset = data["next_offset"]
        assert len(seen) == len(set(seen)) == mcp_index.page_count

        data, _ = await ok(
            client, "rag_list_pages_for_source", {"source_id": mcp_index.source_id, "space": "OPS"}
        )
        assert data["total"] == data["count"] == mcp_index.ops_count
        assert {page["space"] for page in data["pages"]} == {"OPS"}

    run_with_client(mcp_settings, scenario)


def test_read_full_page_by_key_id_and_url(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    page = mcp_index.marked[1]

    async def scenario(client: Client, services: Services) -> None:
        markdown = (await services.store.get_page(page.key)).markdown or ""
        for args in ({"page_id": page.key}, {"page_id": page.confluence_id}, {"url": page.url}):
            data, text = await ok(client, "rag_read_full_page", args)
            assert data["page_id"] == page.key and data["title"] == page.title
            assert data["content"] == markdown and not data["truncated"]
            assert data["next_offset"] is None and data["total_chars"] == len(markdown)
            assert page.title in text and page.url in text and page.marker in text
            assert "TRUNCATED" not in text

    run_with_client(mcp_settings, scenario)


def test_long_page_is_truncated_with_a_marker_and_read_in_parts(
    mcp_settings: Settings, mcp_index: McpIndex
) -> None:
    async def scenario(client: Client, services: Services) -> None:
        markdown = (await services.store.get_page(mcp_index.longest)).markdown or ""
        assert len(markdown) > 1000
        parts: list[str] = []
        offset: int | None = 0
        calls = 0
        while offset is not None:
            args = {"page_id": mcp_index.longest, "offset": offset, "max_chars": 400}
            data, text = await ok(client, "rag_read_full_page", args)
            calls += 1
            parts.append(data["content"])
            assert data["returned_chars"] == len(data["content"]) <= 400
            if data["truncated"]:
                assert "[TRUNCATED" in text
                assert f"offset={data['next_offset']}" in text
                assert mcp_index.longest in text
            offset = data["next_offset"]
        assert "".join(parts) == markdown
        assert calls == -(-len(markdown) // 400)

    run_with_client(mcp_settings, scenario)


def test_sync_returns_a_progress_id_that_can_be_followed(
    mcp_settings: Settings, mcp_index: McpIndex
) -> None:
    async def scenario(client: Client, services: Services) -> None:
        data, text = await ok(client, "rag_sync_source", {"source_id": mcp_index.source_id})
        progress_id = data["progress_id"]
        assert data["already_running"] is False and data["status"] == "queued"
        assert progress_id in text and "rag_get_progress" in text

        # Not started yet (no runner): a second request points at the same job.
        again, text = await ok(client, "rag_sync_source", {"source_id": mcp_index.source_id})
        assert again["already_running"] is True and again["progress_id"] == progress_id
        assert "already" in text

        services.jobs.start()
        for _ in range(600):
            progress, text = await ok(client, "rag_get_progress", {"progress_id": progress_id})
            if progress["done"]:
                break
            assert "Still running" in text
            await asyncio.sleep(0.1)
        assert progress["status"] == "completed", progress
        assert progress["counters"]["pages_listed"] == mcp_index.page_count
        assert progress["kind"] == "sync" and progress["percent"] == 100
        assert "completed" in text and progress_id in text

    run_with_client(mcp_settings, scenario)


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("rag_search_knowledge_base", {"query": ""}, "query is empty"),
        ("rag_search_knowledge_base", {"query": "   "}, "query is empty"),
        ("rag_search_knowledge_base", {"query": "x", "source_id": "nope"}, "unknown source_id"),
        ("rag_search_knowledge_base", {"query": "x", "space": "NOSUCH"}, "space 'NOSUCH'"),
        ("rag_search_knowledge_base", {"query": "x", "match_count": 0}, "match_count"),
        ("rag_search_knowledge_base", {"query": "x", "match_count": 51}, "match_count"),
        ("rag_search_knowledge_base", {"query": "x", "return_mode": "docs"}, "return_mode"),
        ("rag_search_code_examples", {"query": ""}, "query is empty"),
        ("rag_search_code_examples", {"query": "x", "source_id": "nope"}, "unknown source_id"),
        ("rag_list_pages_for_source", {"source_id": "nope"}, "unknown source_id"),
        ("rag_list_pages_for_source", {"source_id": ""}, "unknown source_id"),
        ("rag_list_pages_for_source", {"source_id": "SRC", "space": "XX"}, "space 'XX'"),
        (
            "rag_search_knowledge_base",
            {"query": "x", "labels": list("abcdefghijklmnopqrstu")},
            "at most 20 labels",
        ),
        ("rag_list_pages_for_source", {"source_id": "SRC", "limit": 201}, "limit"),
        ("rag_list_pages_for_source", {"source_id": "SRC", "offset": -1}, "offset"),
        ("rag_read_full_page", {}, "give page_id"),
        ("rag_read_full_page", {"page_id": "not a page"}, "is not a page id"),
        ("rag_read_full_page", {"page_id": "SRC:999999"}, "no page"),
        ("rag_read_full_page", {"page_id": "999999"}, "no indexed page"),
        ("rag_read_full_page", {"url": "ftp://x/y"}, "http(s)"),
        ("rag_read_full_page", {"url": "https://elsewhere.example/wiki/x"}, "no indexed source"),
        ("rag_read_full_page", {"page_id": "SRC:100001", "offset": 10**7}, "past the end"),
        ("rag_sync_source", {"source_id": "nope"}, "unknown source_id"),
        ("rag_get_progress", {"progress_id": "no-such-job"}, "no-such-job"),
    ],
)
def test_errors_are_tool_errors_and_the_server_keeps_serving(
    mcp_settings: Settings,
    mcp_index: McpIndex,
    tool: str,
    arguments: dict[str, Any],
    expected: str,
) -> None:
    arguments = {
        key: value.replace("SRC", mcp_index.source_id) if isinstance(value, str) else value
        for key, value in arguments.items()
    }

    async def scenario(client: Client, services: Services) -> None:
        text = await tool_error(client, tool, arguments)
        assert expected in text, text
        data, _ = await ok(client, "rag_get_available_sources")
        assert data["count"] == 1

    run_with_client(mcp_settings, scenario)


def test_index_built_with_another_model_is_a_clear_tool_error(
    mcp_settings: Settings, mcp_index: McpIndex
) -> None:
    other = index_settings(
        mcp_settings.data_dir, {**mcp_index.env, "CONFLUENCE_RAG_OPENAI_MODEL": "other-model"}
    )

    async def scenario(client: Client, services: Services) -> None:
        text = await tool_error(client, "rag_search_knowledge_base", {"query": "deployment"})
        assert "built with 'openai:fake-sha256'" in text and "other-model" in text
        # What does not need the model still works.
        data, _ = await ok(client, "rag_list_pages_for_source", {"source_id": mcp_index.source_id})
        assert data["total"] == mcp_index.page_count

    run_with_client(other, scenario)
