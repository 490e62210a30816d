"""The same tools over the real transports: a `confluence-rag mcp` subprocess on stdio, and
streamable HTTP from a live uvicorn server (our own Starlette app, and the API app), with the
API token enforced on /mcp when one is configured."""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import httpx2
import pytest
import uvicorn
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from starlette.applications import Starlette

from confluence_rag.api.app import create_app
from confluence_rag.mcp.server import mount_mcp
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from mcp import Client, StdioServerParameters
from tests.mcp.conftest import McpIndex
from tests.mcp.helpers import TOOLS, exercise

CLI = Path(sys.executable).parent / "confluence-rag"


class LiveServer:
    """uvicorn serving an ASGI app on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Starlette) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", ws="none", timeout_graceful_shutdown=3
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: self._server.run(sockets=[self._socket]), daemon=True
        )

    @property
    def mcp_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def __enter__(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._socket.close()
        assert not self._thread.is_alive(), "the server did not stop"


def starlette_app(settings: Settings) -> Starlette:
    """A minimal host app shaped like the API's: services opened by its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with build_services(settings) as services:
            services.jobs.start()
            app.state.services = services
            yield
            app.state.services = None

    app = Starlette(lifespan=lifespan)
    app.state.settings = settings
    app.state.services = None
    mount_mcp(app)
    return app


def test_stdio_subprocess(mcp_settings: Settings, mcp_index: McpIndex, tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=str(CLI),
        args=["mcp"],
        env={
            "CONFLUENCE_RAG_DATA_DIR": str(mcp_settings.data_dir),
            "HF_HUB_OFFLINE": "1",
            **mcp_index.env,
        },
        cwd=tmp_path,
    )
    errors = tmp_path / "stderr.txt"

    async def main() -> None:
        with errors.open("w") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                assert client.server_info is not None
                assert client.server_info.name == "confluence-rag"
                await exercise(client, mcp_index)

    asyncio.run(main())
    assert "Traceback" not in errors.read_text()


def test_streamable_http_on_a_starlette_app(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    with LiveServer(starlette_app(mcp_settings)) as server:

        async def main() -> None:
            async with Client(server.mcp_url) as client:
                await exercise(client, mcp_index)

        asyncio.run(main())


def test_an_app_can_be_served_again(mcp_settings: Settings, mcp_index: McpIndex) -> None:
    """Each lifespan runs its own MCP session manager (the SDK's can run only once)."""
    app = starlette_app(mcp_settings)
    for _ in range(2):
        with LiveServer(app) as server:

            async def main() -> None:
                async with Client(server.mcp_url) as client:
                    tools = (await client.list_tools()).tools
                    assert len(tools) == len(TOOLS)

            asyncio.run(main())


@pytest.fixture
def api_token_settings(mcp_settings: Settings) -> Iterator[Settings]:
    yield mcp_settings.model_copy(update={"api_token": SecretStr("mcp-test-token")})


def test_streamable_http_in_the_api_app_behind_the_api_token(
    api_token_settings: Settings, mcp_index: McpIndex
) -> None:
    app = create_app(api_token_settings)
    assert mount_mcp(app) is mount_mcp(app), "a second mount must reuse the first"
    with LiveServer(app) as server:
        # Without the token: refused before any MCP processing, in the API's error shape.
        response = httpx.post(
            server.mcp_url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        wrong = httpx.post(server.mcp_url, json={}, headers={"Authorization": "Bearer wrong-token"})
        assert wrong.status_code == 401
        # The API itself still answers next to it.
        assert httpx.get(f"http://127.0.0.1:{server.port}/health").status_code == 200

        async def main() -> None:
            headers = {"Authorization": "Bearer mcp-test-token"}
            async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
                transport = streamable_http_client(server.mcp_url, http_client=http)
                async with Client(transport) as client:
                    await exercise(client, mcp_index)

        asyncio.run(main())
