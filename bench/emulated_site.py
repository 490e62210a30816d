"""An emulated Confluence site in a child process, for the crawl and sync benchmarks: the
emulator's own work must not share the benchmark's CPU time and GIL.

    with emulated_site(flavour="cloud", pages=4000, latency_ms=50) as site_url: ...

The keywords are ``EmulatorConfig``'s. The child prints its URL, then serves until its stdin
closes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_CHILD = """
import json, sys
from confluence_rag.emulator import EmulatorConfig, EmulatorServer
server = EmulatorServer(EmulatorConfig(**json.loads(sys.argv[1])), port=0).start()
print(server.site_url, flush=True)
sys.stdin.read()
server.stop()
"""


@contextmanager
def emulated_site(**config: Any) -> Iterator[str]:
    """The site URL of an emulator built from ``EmulatorConfig(**config)`` in a child process."""
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        site_url = child.stdout.readline().strip()
        if not site_url:
            raise SystemExit("the emulator did not start")
        yield site_url
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=30)
