"""`confluence-rag serve` as a real subprocess on a SQLite file: start, wait for /health, kill -9.

The reliability tests and ``bench/load.py`` need the real thing a user runs (the installed
command, its own process, its own event loop) so that SIGKILL means what it means in
production: no ``finally`` blocks, no graceful shutdown, a WAL file left behind.
"""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"
START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One ``confluence-rag serve`` on 127.0.0.1; output goes to ``log_path`` (appended)."""

    def __init__(self, env: dict[str, str], log_path: Path, port: int | None = None) -> None:
        self.env = env
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServeProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(EXECUTABLE), "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"serve did not start:\n{self.log()}")
            time.sleep(0.1)

    def kill9(self) -> int:
        """SIGKILL: the process gets no chance to clean up. Returns its exit code."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        """Ctrl-C (graceful), then SIGKILL if it hangs."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def pages_stored(database: Path, source_id: str) -> int:
    """Live pages of a source, read straight from the file (read-only; WAL readers never block)."""
    if not database.exists():
        return 0
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        (count,) = db.execute(
            "SELECT count(*) FROM pages WHERE source_id = ? AND NOT is_deleted", (source_id,)
        ).fetchone()
        return int(count)
    finally:
        db.close()
