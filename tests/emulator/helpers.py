"""Helpers for the emulator's own tests: an httpx client per server, and a walk that follows
``_links.next`` exactly as DESIGN tells a crawler to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from confluence_rag.emulator import EmulatorServer


def client(server: EmulatorServer, *, restricted: bool = False) -> httpx.Client:
    return httpx.Client(
        base_url=server.api_base, headers=server.auth_headers(restricted=restricted), timeout=30
    )


def walk(http: httpx.Client, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every response body of a listing, following ``_links.next`` relative to
    ``_links.base`` until it is absent."""
    response = http.get(path, params=params)
    while True:
        assert response.status_code == 200, response.text
        body = response.json()
        yield body
        next_link = body["_links"].get("next")
        if not next_link:
            return
        assert not next_link.startswith("http"), "next must be relative to _links.base"
        response = http.get(body["_links"]["base"] + next_link)
