"""Returning freed heap to the OS: works on glibc Linux (where the crawl runs in CI)."""

from __future__ import annotations

import sys

from confluence_rag.ingest.memory import release_free_heap


def test_release_free_heap() -> None:
    garbage = [bytearray(64 * 1024) for _ in range(200)]  # ~13 MB, then freed
    del garbage
    assert release_free_heap() is sys.platform.startswith("linux")
