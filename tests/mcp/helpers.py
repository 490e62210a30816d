"""Small checks the MCP test modules share (all through the SDK's own client)."""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.types import CallToolResult, TextContent

from mcp import Client
from tests.mcp.conftest import McpIndex

TOOLS = (
    "rag_get_available_sources",
    "rag_search_knowledge_base",
    "rag_search_code_examples",
    "rag_list_pages_for_source",
    "rag_read_full_page",
    "rag_sync_source",
    "rag_get_progress",
)


def text_of(result: CallToolResult) -> str:
    """The readable text of a result: there must be some, and only text blocks."""
    assert result.content, "a tool result without text"
    assert all(isinstance(block, TextContent) for block in result.content)
    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


async def ok(client: Client, name: str, arguments: dict[str, Any] | None = None) -> tuple[Any, str]:
    """Call a tool that must succeed: (structured content, text)."""
    result = await client.call_tool(name, arguments or {})
    text = text_of(result)
    assert not result.is_error, text
    assert isinstance(result.structured_content, dict), "no structured content"
    # The text is for reading, not a JSON dump of the structured content.
    assert not text.lstrip().startswith("{"), text[:200]
    return result.structured_content, text


async def tool_error(client: Client, name: str, arguments: dict[str, Any]) -> str:
    """Call a tool that must fail as a tool error (isError), not a protocol error; its text."""
    result = await client.call_tool(name, arguments)
    text = text_of(result)
    assert result.is_error, f"{name}({arguments}) succeeded: {text[:300]}"
    return text


# The index embeds with deterministic noise (the fast fake), and a marker shares words with
# other markers ("ocelot_tangent_demo_00002" / "..._00021"): keyword search ranks the marked
# chunk first (only it has every word), but fused with noisy semantic ranks it is only certain to
# be among the top few dozen, not first.
MARKER_HITS = 20


def hit_for(
    results: list[dict[str, Any]], page_id: str, marker: str, field: str = "content"
) -> dict[str, Any]:
    """The result of ``page_id`` whose ``field`` holds ``marker`` (see MARKER_HITS)."""
    found = [hit for hit in results if hit["page_id"] == page_id and marker in hit[field]]
    assert found, f"{marker} of {page_id} not in {[hit['page_id'] for hit in results]}"
    return found[0]


async def exercise(client: Client, index: McpIndex) -> None:
    """List the tools and call each one; the text names the expected page and URL."""
    names = sorted(tool.name for tool in (await client.list_tools()).tools)
    assert names == sorted(TOOLS)
    page = index.marked[2]

    data, text = await ok(client, "rag_get_available_sources")
    assert data["sources"][0]["source_id"] == index.source_id and index.source_id in text

    data, text = await ok(
        client, "rag_search_knowledge_base", {"query": page.marker, "match_count": MARKER_HITS}
    )
    hit_for(data["results"], page.key, page.marker)
    assert page.title in text and page.url in text

    data, text = await ok(
        client, "rag_search_code_examples", {"query": page.marker, "match_count": MARKER_HITS}
    )
    hit_for(data["results"], page.key, page.marker, "code")
    assert page.url in text

    data, text = await ok(
        client, "rag_list_pages_for_source", {"source_id": index.source_id, "limit": 200}
    )
    assert data["total"] == index.page_count and page.title in text and page.url in text

    data, text = await ok(client, "rag_read_full_page", {"url": page.url})
    assert data["page_id"] == page.key and page.marker in text and page.title in text

    assert "query is empty" in await tool_error(client, "rag_search_knowledge_base", {"query": ""})
    assert "unknown source_id" in await tool_error(client, "rag_sync_source", {"source_id": "x"})

    data, text = await ok(client, "rag_sync_source", {"source_id": index.source_id})
    progress_id = data["progress_id"]
    for _ in range(600):
        progress, text = await ok(client, "rag_get_progress", {"progress_id": progress_id})
        if progress["done"]:
            break
        await asyncio.sleep(0.1)
    assert progress["status"] == "completed", progress
    assert progress_id in text and "completed" in text
