"""A real OpenAI-compatible embeddings server on 127.0.0.1, for fast crawl tests.

The local model embeds ~30 chunks/s on this machine; tests about jobs (cancel, resume, conflicts)
need many pages but not real semantics, so they point the ``openai`` embedder at this server.
Vectors are a deterministic function of the text (its SHA-256 spread over ``dimension`` floats),
so equal texts get equal vectors. ``delay_seconds`` slows every batch, to stand in for a model.
The server counts the texts it embedded, so tests can check what the crawl sent.

``hold_after(n)`` answers n more batches, then holds every later one until ``release()``: a
test that must act while a crawl is between two batches waits for ``wait_held()`` rather than
hoping a slow model keeps the crawl busy long enough.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

API_KEY = "fake-embeddings-key"
MODEL = "fake-sha256"


def vector_for(text: str, dimension: int) -> list[float]:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    values = np.random.default_rng(seed).standard_normal(dimension)
    return [float(v) for v in values]


class FakeEmbeddingServer:
    def __init__(self, dimension: int = 32, delay_seconds: float = 0.0) -> None:
        self.dimension = dimension
        self.delay_seconds = delay_seconds
        self.texts_embedded = 0
        self.requests = 0
        self.batch_sizes: list[int] = []
        self._lock = threading.Lock()
        # None: answer every batch; else how many more to answer before holding the next.
        self._allowed: int | None = None
        self._holding = threading.Condition()
        self.held = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                body: dict[str, Any] = json.loads(self.rfile.read(length) or b"{}")
                if self.headers.get("authorization") != f"Bearer {API_KEY}":
                    self._answer(401, {"error": {"message": "bad key"}})
                    return
                texts = body.get("input") or []
                server._wait_turn()
                if server.delay_seconds:
                    time.sleep(server.delay_seconds)
                with server._lock:
                    server.requests += 1
                    server.texts_embedded += len(texts)
                    server.batch_sizes.append(len(texts))
                data = [
                    {"index": n, "embedding": vector_for(text, server.dimension)}
                    for n, text in enumerate(texts)
                ]
                self._answer(200, {"data": data, "model": body.get("model")})

            def _answer(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def hold_after(self, batches: int) -> None:
        with self._holding:
            self._allowed = batches

    def release(self) -> None:
        with self._holding:
            self._allowed = None
            self._holding.notify_all()

    def wait_held(self, count: int = 1, timeout: float = 60) -> None:
        """Until ``count`` batches in all have been held; TimeoutError after ``timeout``."""
        with self._holding:
            if not self._holding.wait_for(lambda: self.held >= count, timeout=timeout):
                raise TimeoutError(f"{self.held} batch(es) held after {timeout} s, not {count}")

    def _wait_turn(self) -> None:
        with self._holding:
            if self._allowed is None:
                return
            if self._allowed > 0:
                self._allowed -= 1
                return
            self.held += 1
            self._holding.notify_all()
            self._holding.wait_for(lambda: self._allowed is None)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def settings_env(self) -> dict[str, str]:
        """Environment that points Settings (and a subprocess) at this server."""
        return {
            "CONFLUENCE_RAG_EMBEDDER": "openai",
            "CONFLUENCE_RAG_OPENAI_BASE_URL": self.base_url,
            "CONFLUENCE_RAG_OPENAI_API_KEY": API_KEY,
            "CONFLUENCE_RAG_OPENAI_MODEL": MODEL,
            "CONFLUENCE_RAG_OPENAI_DIMENSIONS": str(self.dimension),
        }

    def __enter__(self) -> FakeEmbeddingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
