"""A small OpenAI-compatible ``/v1/embeddings`` server for tests, served by uvicorn on a real
127.0.0.1 socket (OpenAI is outside the project, so a fake of it is fair).

Vectors are deterministic functions of the text (so tests can compute what to expect), answers
come back in reverse order (clients must reorder by ``index``), and faults are injected from a
queue: each queued ``Fault`` answers one request instead of the normal response.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

DEFAULT_DIMENSION = 8


def expected_vector(text: str, dimension: int = DEFAULT_DIMENSION) -> np.ndarray:
    """The raw vector the server returns for ``text`` (not normalised)."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    return np.random.default_rng(seed).normal(size=dimension).astype(np.float32)


@dataclass
class Fault:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


@dataclass
class FakeOpenAI:
    base_url: str = ""
    faults: list[Fault] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    auth_headers: list[str | None] = field(default_factory=list)
    delay_seconds: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    override_body: Any = None  # answer every request with this body (malformed answers)

    def app(self) -> Starlette:
        async def embeddings(request: Request) -> Response:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                body = await request.json()
                self.requests.append(body)
                self.auth_headers.append(request.headers.get("authorization"))
                if self.delay_seconds:
                    await asyncio.sleep(self.delay_seconds)
                if self.faults:
                    fault = self.faults.pop(0)
                    content = fault.body if fault.body is not None else {"error": {"message": "x"}}
                    return JSONResponse(content, status_code=fault.status, headers=fault.headers)
                if self.override_body is not None:
                    return JSONResponse(self.override_body)
                dimension = body.get("dimensions") or DEFAULT_DIMENSION
                data = [
                    {
                        "object": "embedding",
                        "index": i,
                        "embedding": expected_vector(text, dimension).tolist(),
                    }
                    for i, text in enumerate(body["input"])
                ]
                data.reverse()
                return JSONResponse({"object": "list", "data": data, "model": body["model"]})
            finally:
                self.in_flight -= 1

        return Starlette(routes=[Route("/v1/embeddings", embeddings, methods=["POST"])])


@contextmanager
def serve_fake_openai() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        fake.app(), log_level="warning", lifespan="off", ws="none", http="h11", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake OpenAI server did not start")
        time.sleep(0.01)
    fake.base_url = f"http://127.0.0.1:{port}/v1"
    try:
        yield fake
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
