"""README's MCP section documents every tool the server exposes, with every parameter."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from mcp.types import Tool

from confluence_rag.mcp.server import create_mcp_server
from confluence_rag.services import build_services
from confluence_rag.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def mcp_section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## MCP\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, "README has no '## MCP' section"
    return match.group(1)


def listed_tools(settings: Settings) -> list[Tool]:
    async def main() -> list[Tool]:
        async with build_services(settings) as services:
            return await create_mcp_server(services).list_tools()

    return asyncio.run(main())


def test_every_tool_and_parameter_is_documented(settings: Settings) -> None:
    section = mcp_section()
    rows = {
        match.group(1): line
        for line in section.splitlines()
        if (match := re.match(r"^\| `(rag_\w+)` \|", line))
    }
    tools = listed_tools(settings)
    assert len(tools) == 7
    missing = [tool.name for tool in tools if tool.name not in rows]
    assert not missing, f"README's MCP section lacks tools: {missing}"
    for tool in tools:
        params = tool.input_schema.get("properties", {})
        undocumented = [name for name in params if f"`{name}`" not in rows[tool.name]]
        assert not undocumented, f"{tool.name}: README lacks parameters {undocumented}"
    stale = sorted(set(rows) - {tool.name for tool in tools})
    assert not stale, f"README documents tools that do not exist: {stale}"


def test_the_section_tells_how_to_connect() -> None:
    section = mcp_section()
    assert "claude mcp add confluence-rag -- confluence-rag mcp" in section
    assert "http://127.0.0.1:8080/mcp" in section
    assert '"mcpServers"' in section and '"args": ["mcp"]' in section
