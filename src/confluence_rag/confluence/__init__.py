"""Confluence REST client: async httpx, CQL, typed records. Knows HTTP, nothing of storage."""
