"""Fixtures for crawl tests: one loaded MiniLM per session, a fake embeddings server, settings.

Most job tests (cancel, resume, conflicts) need many pages but not real semantics: they embed
through a real OpenAI-compatible server on 127.0.0.1 (``fake_embeddings.py``), which answers in
milliseconds. The main end-to-end crawl uses the real local model.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT, EmulatorServer
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.ingest.sources import NewSource
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def local_embedder() -> Iterator[Embedder]:
    """The default MiniLM, loaded once for the whole session (loading takes seconds)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        embedder = create_embedder(Settings(data_dir=Path(tmp), embedder="local"))
        yield embedder
        embedder.close()


@pytest.fixture
def fake_embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def fast_settings(
    isolated_env: Path, fake_embeddings: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """Settings for job tests: fake embeddings, quick heartbeats and leases."""
    env = {
        **fake_embeddings.settings_env(),
        "CONFLUENCE_RAG_JOB_HEARTBEAT_SECONDS": "0.2",
        "CONFLUENCE_RAG_JOB_LEASE_SECONDS": "1.5",
        "CONFLUENCE_RAG_MAX_RETRIES": "6",
        "CONFLUENCE_RAG_RETRY_AFTER_MAX_SECONDS": "0.2",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # subprocesses inherit the same settings
    return Settings()


def new_source(server: EmulatorServer, *spaces: str, **extra: Any) -> NewSource:
    """A NewSource for the emulator's demo user (Cloud: email + token; DC: PAT)."""
    cloud = server.config.flavour == "cloud"
    return NewSource(
        confluence_url=server.site_url,
        flavour=server.config.flavour,
        user_email=DEMO_EMAIL if cloud else None,
        api_token=DEMO_API_TOKEN if cloud else DEMO_PAT,
        space_keys=spaces or (server.config.space_key,),
        **extra,
    )


def data_files(data_dir: Path) -> bytes:
    """Every byte the store keeps on disk (database, WAL, shared memory, key file...)."""
    return b"".join(p.read_bytes() for p in sorted(data_dir.rglob("*")) if p.is_file())
