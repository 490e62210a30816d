"""Helpers for the security tests: the real app on a real socket with chosen settings, a fast
real embeddings server, and tiny HTTP servers on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from confluence_rag.api.app import create_app
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer
from tests.ingest.fake_embeddings import FakeEmbeddingServer

API_TOKEN = "server-token-7Yq2-unguessable"


def app_settings(
    data_dir: Path, embeddings: FakeEmbeddingServer, template: Path, **overrides: Any
) -> Settings:
    """Settings with data in ``data_dir`` (a migrated copy of ``template``) and fast embeddings."""
    env = embeddings.settings_env()
    values: dict[str, Any] = {
        "embedder": "openai",
        "openai_base_url": env["CONFLUENCE_RAG_OPENAI_BASE_URL"],
        "openai_api_key": env["CONFLUENCE_RAG_OPENAI_API_KEY"],
        "openai_model": env["CONFLUENCE_RAG_OPENAI_MODEL"],
        "openai_dimensions": int(env["CONFLUENCE_RAG_OPENAI_DIMENSIONS"]),
        "data_dir": data_dir,
    }
    values.update(overrides)
    settings = Settings(**values)
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, settings.sqlite_path)
    return settings


@contextmanager
def running_app(settings: Settings) -> Iterator[httpx.Client]:
    """``create_app(settings)`` under uvicorn on 127.0.0.1, and a client bound to it."""
    server = ApiServer(create_app(settings)).start()
    try:
        with httpx.Client(base_url=server.url, timeout=30, follow_redirects=False) as client:
            yield client
    finally:
        server.stop()


Handler = Callable[[BaseHTTPRequestHandler], None]


@contextmanager
def tiny_server(handle: Handler) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A real HTTP server on 127.0.0.1 answering every GET with ``handle``; yields its URL and
    the headers of every request it received (to prove what was, or was not, sent there)."""
    seen: list[dict[str, str]] = []

    class Server(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            seen.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
            handle(self)

        def log_message(self, format: str, *args: object) -> None:
            return

    with ThreadingHTTPServer(("127.0.0.1", 0), Server) as httpd:
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{httpd.server_port}", seen
        finally:
            httpd.shutdown()


def redirect_to(location: str) -> Handler:
    def handle(request: BaseHTTPRequestHandler) -> None:
        request.send_response(302)
        request.send_header("Location", location)
        request.send_header("Content-Length", "0")
        request.end_headers()

    return handle


def csrf_from(html: str) -> str:
    """The CSRF token a UI page put in its forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def assert_error_shape(response: httpx.Response, status: int, code: str | None = None) -> None:
    """The standard error body ``{"error": {"code", "message", "details"}}`` with ``status``."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
