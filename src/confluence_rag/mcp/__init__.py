"""MCP server (official MCP Python SDK)."""
