"""The web UI served by the real app on a real socket, for plain HTTP tests.

``web_client(settings=None)`` starts ``create_app(settings)`` under uvicorn (the API tests'
``ApiServer``) with its lifespan, and returns an ``httpx.Client`` bound to it that keeps cookies
like a browser. Crawls embed with the fake OpenAI-compatible server so they take a second; the
browser tests (``test_browser.py``) use the real local model instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from confluence_rag.api.app import create_app
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer
from tests.ingest.fake_embeddings import FakeEmbeddingServer

WebClientFactory = Callable[..., httpx.Client]
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="session")
def web_fake_embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def web_settings(
    isolated_env: Path, web_fake_embeddings: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    for name, value in web_fake_embeddings.settings_env().items():
        monkeypatch.setenv(name, value)
    return Settings(data_dir=isolated_env)


@pytest.fixture
def web_client(web_settings: Settings) -> Iterator[WebClientFactory]:
    running: list[tuple[ApiServer, httpx.Client]] = []

    def factory(settings: Settings | None = None) -> httpx.Client:
        server = ApiServer(create_app(settings or web_settings)).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        running.append((server, client))
        return client

    yield factory
    for server, client in reversed(running):
        client.close()
        server.stop()


def csrf_of(html: str) -> str:
    """The CSRF token a rendered form carries."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)
