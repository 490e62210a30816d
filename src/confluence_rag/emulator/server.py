"""Run the emulator on a real socket: in a background thread for tests and benchmarks
(``with EmulatorServer(config) as server``), or in the foreground for the CLI (``serve``)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from types import TracebackType

import uvicorn

from confluence_rag.emulator.app import create_emulator_app
from confluence_rag.emulator.config import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    RESTRICTED_API_TOKEN,
    RESTRICTED_EMAIL,
    RESTRICTED_PAT,
    EmulatorConfig,
)
from confluence_rag.emulator.state import EmulatorState
from confluence_rag.errors import ConfigurationError

START_TIMEOUT_S = 15.0


def auth_headers(flavour: str, *, restricted: bool = False) -> dict[str, str]:
    """Cloud: HTTP Basic email:api-token. Data Center: Bearer personal access token."""
    if flavour == "cloud":
        email, token = (
            (RESTRICTED_EMAIL, RESTRICTED_API_TOKEN) if restricted else (DEMO_EMAIL, DEMO_API_TOKEN)
        )
        raw = base64.b64encode(f"{email}:{token}".encode()).decode()
        return {"Authorization": f"Basic {raw}"}
    return {"Authorization": f"Bearer {RESTRICTED_PAT if restricted else DEMO_PAT}"}


class EmulatorServer:
    """uvicorn on 127.0.0.1 (a free port unless ``port`` is given), in a daemon thread.

    ``site_url`` is what a user types; ``api_base`` is where the REST API lives (Cloud adds
    ``/wiki``); ``state`` is the live EmulatorState.
    """

    def __init__(
        self,
        config: EmulatorConfig,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.state = EmulatorState(config)
        self.app = create_emulator_app(config, self.state)
        self._host = host
        self._port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._bound_port: int | None = None

    @property
    def config(self) -> EmulatorConfig:
        """The live configuration (``state.set_limit_caps`` changes it)."""
        return self.state.config

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise ConfigurationError("the emulator has not been started")
        return self._bound_port

    @property
    def site_url(self) -> str:
        return f"http://{self._host}:{self.port}"

    @property
    def api_base(self) -> str:
        return self.site_url + self.config.context_path

    def auth_headers(self, *, restricted: bool = False) -> dict[str, str]:
        """The Authorization header of the demo (or restricted) user for this flavour."""
        return auth_headers(self.config.flavour, restricted=restricted)

    def _bind(self) -> socket.socket:
        # proto must say TCP: asyncio sets TCP_NODELAY on accepted sockets only then, and without
        # it every keep-alive response stalls ~40 ms on Nagle + delayed ACK
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError as error:
            sock.close()
            raise ConfigurationError(
                f"cannot listen on {self._host}:{self._port}: {error.strerror}"
            ) from error
        sock.listen(128)
        sock.set_inheritable(True)
        return sock

    def _uvicorn(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level=self._log_level,
            lifespan="off",
            ws="none",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        return uvicorn.Server(config)

    def bind(self) -> EmulatorServer:
        """Claim the port now (``port`` and ``site_url`` work from here on)."""
        if self._socket is None:
            self._socket = self._bind()
            self._bound_port = self._socket.getsockname()[1]
        return self

    def start(self) -> EmulatorServer:
        self.bind()
        assert self._socket is not None
        self._server = self._uvicorn()
        server, sock = self._server, self._socket
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=[sock]), name="confluence-emulator", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError("the Confluence emulator did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        # a request parked at a gate would hold the graceful shutdown for its whole timeout
        self.state.gates.release_all()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self._server = None
        self._thread = None

    def serve_forever(self) -> None:
        """Run in the foreground (the CLI): returns on Ctrl-C."""
        self.bind()
        assert self._socket is not None
        self._server = self._uvicorn()
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
