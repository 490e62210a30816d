"""The real API on a real socket: ``create_app(settings)`` under uvicorn in a thread, its lifespan
run (store opened and migrated in tmp, job runner started), a real Confluence emulator, and a
real OpenAI-compatible embeddings server (fast, deterministic vectors) so crawls take a second.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from confluence_rag.api.app import create_app
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, EmulatorServer
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer


class ApiServer:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=5
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=[self._socket]), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
        assert not self._thread.is_alive(), "the API server did not stop"


@pytest.fixture(scope="session")
def fake_embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def api_settings(
    isolated_env: Path,
    fake_embeddings: FakeEmbeddingServer,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    for name, value in fake_embeddings.settings_env().items():
        monkeypatch.setenv(name, value)
    settings = Settings(data_dir=isolated_env)
    # A copy of a database migrated once per session: the app's open() still checks it.
    isolated_env.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template, settings.sqlite_path)
    return settings


AppFactory = Callable[..., httpx.Client]


@pytest.fixture
def serve_app(api_settings: Settings) -> Iterator[AppFactory]:
    """``serve_app(settings=None, customise=None) -> httpx.Client`` bound to a running app."""
    running: list[tuple[ApiServer, httpx.Client]] = []

    def factory(
        settings: Settings | None = None, customise: Callable[[FastAPI], Any] | None = None
    ) -> httpx.Client:
        app = create_app(settings or api_settings)
        if customise is not None:
            customise(app)
        server = ApiServer(app).start()
        client = httpx.Client(base_url=server.url, timeout=30)
        running.append((server, client))
        return client

    yield factory
    for server, client in reversed(running):
        client.close()
        server.stop()


@pytest.fixture
def client(serve_app: AppFactory) -> httpx.Client:
    return serve_app()


def source_body(server: EmulatorServer, **overrides: Any) -> dict[str, Any]:
    """The request a user sends to add the emulator's main space."""
    body: dict[str, Any] = {
        "confluence_url": server.site_url,
        "user_email": DEMO_EMAIL,
        "api_token": DEMO_API_TOKEN,
        "space_key": server.config.space_key,
        # 127.0.0.1 is not *.atlassian.net, so the flavour is not inferred as Cloud.
        "flavour": server.config.flavour,
    }
    body.update(overrides)
    return body


def wait_for_job(client: httpx.Client, progress_id: str, timeout: float = 180) -> dict[str, Any]:
    """Poll until the job ends; returns its final state."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/progress/{progress_id}")
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job {progress_id} still {job['status']}: {job}")
        time.sleep(0.1)
