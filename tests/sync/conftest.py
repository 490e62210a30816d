"""Fixtures for sync tests: the emulator over a socket, the fake embeddings server over a socket,
and settings for SQLite (a file in tmp) or PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from confluence_rag.emulator import EmulatorServer
from confluence_rag.records import JobRecord
from confluence_rag.services import Services
from confluence_rag.settings import Settings
from tests.ingest.conftest import new_source
from tests.ingest.fake_embeddings import FakeEmbeddingServer

__all__ = ["crawl", "edit_body", "leaf_pages", "new_source", "sync_now"]

JOB_TIMEOUT = 120.0


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


def sync_env(embeddings: FakeEmbeddingServer, **extra: str) -> dict[str, str]:
    return {
        **embeddings.settings_env(),
        "CONFLUENCE_RAG_JOB_HEARTBEAT_SECONDS": "0.2",
        "CONFLUENCE_RAG_JOB_LEASE_SECONDS": "5",
        "CONFLUENCE_RAG_MAX_RETRIES": "2",
        "CONFLUENCE_RAG_RETRY_AFTER_MAX_SECONDS": "0.2",
        "CONFLUENCE_RAG_SYNC_JITTER_SECONDS": "0",
        **extra,
    }


@pytest.fixture
def make_settings(
    isolated_env: Path, embeddings: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """``make_settings(database_url=None, **env)`` -> Settings with fake embeddings."""

    def build(database_url: str | None = None, **env: str) -> Settings:
        for name, value in sync_env(embeddings, **env).items():
            monkeypatch.setenv(name, value)
        return Settings(data_dir=isolated_env, database_url=database_url)

    return build


async def crawl(services: Services, server: EmulatorServer, *spaces: str) -> str:
    """Add a source for ``spaces`` and crawl it to completion; returns the source id."""
    source, job = await services.sources.add(new_source(server, *spaces))
    assert job is not None
    services.jobs.start()
    done = await services.jobs.wait(job.id, timeout=JOB_TIMEOUT)
    assert done.status == "completed", done.error
    return source.id


async def sync_now(services: Services, source_id: str) -> JobRecord:
    """Run one sync job to its end and return it."""
    job = await services.jobs.submit(source_id, "sync")
    services.jobs.start()
    done = await services.jobs.wait(job.id, timeout=JOB_TIMEOUT)
    assert done.status in ("completed", "failed", "cancelled"), done.status
    return done


def edit_body(server: EmulatorServer, page_id: str, note: str) -> None:
    """Publish a new version that appends a paragraph (the page's marker phrase stays)."""
    record = server.state.content(page_id)
    server.state.edit_page(page_id, body=record.body + f"<p>{note}</p>")


def leaf_pages(server: EmulatorServer, ids: set[str]) -> list[str]:
    """Pages (type page) without children, sorted: moving one moves exactly one page."""
    state = server.state
    return sorted(
        page_id
        for page_id in ids
        if state.content(page_id).type == "page" and not state.children(page_id)
    )
