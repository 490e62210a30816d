"""Several job runners on one PostgreSQL queue: real `confluence-rag worker` subprocesses, the
emulator over a socket, embeddings from a real OpenAI-compatible server on 127.0.0.1.

- ``pg_env``: a fresh PostgreSQL database and the environment every worker inherits (fake
  embeddings, quick heartbeat 0.2 s and lease 1.5 s), returned as this process's Settings.
- ``workers``: starts worker subprocesses (``workers.start(jobs=1)``) that print ``ready``
  before returning; every one still alive is killed after the test.
- ``db_counts``: what the database really holds for a source, straight from SQL, so duplicates
  a store method might hide would show.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest

from confluence_rag.emulator import EmulatorServer
from confluence_rag.errors import ConfluenceRagError
from confluence_rag.records import JobRecord
from confluence_rag.services import Services, build_services
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"
HEARTBEAT = 0.2
LEASE = 1.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def embeddings_env(embeddings: FakeEmbeddingServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read from the environment embed through ``embeddings``."""
    for name, value in embeddings.settings_env().items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def pg_env(
    pg_database_url: str,
    embeddings: FakeEmbeddingServer,
    isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Settings:
    """PostgreSQL settings for this process; worker subprocesses inherit the same variables
    (same database, same data dir and so the same secret key file)."""
    env = {
        **embeddings.settings_env(),
        "CONFLUENCE_RAG_DATABASE_URL": pg_database_url,
        "CONFLUENCE_RAG_JOB_HEARTBEAT_SECONDS": str(HEARTBEAT),
        "CONFLUENCE_RAG_JOB_LEASE_SECONDS": str(LEASE),
        "CONFLUENCE_RAG_MAX_RETRIES": "6",
        "CONFLUENCE_RAG_RETRY_AFTER_MAX_SECONDS": "0.2",
        "CONFLUENCE_RAG_LOG_LEVEL": "INFO",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


@dataclass
class Worker:
    process: subprocess.Popen[str]
    worker_id: str
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        os.kill(self.process.pid, sig)

    def wait(self, timeout: float = 30) -> int:
        return self.process.wait(timeout=timeout)


class Workers:
    """Starts `confluence-rag worker` subprocesses and cleans them up."""

    def __init__(self, tmp_path: Path) -> None:
        self._tmp_path = tmp_path
        self.started: list[Worker] = []

    def start(self, jobs: int = 1, timeout: float = 60) -> Worker:
        stderr = self._tmp_path / f"worker-{len(self.started)}.stderr"
        with stderr.open("w") as errors:
            process = subprocess.Popen(
                [str(EXECUTABLE), "worker", "--jobs", str(jobs)],
                env=dict(os.environ),
                stdout=subprocess.PIPE,
                stderr=errors,
                text=True,
            )
        worker = Worker(process, "", stderr)
        self.started.append(worker)
        assert process.stdout is not None
        deadline = time.monotonic() + timeout
        line = process.stdout.readline()  # blocks until the worker is up (or dies)
        assert time.monotonic() < deadline, "the worker took too long to start"
        assert line.startswith("worker ") and " ready" in line, f"{line!r}\n{worker.log()}"
        worker.worker_id = line.split()[1]
        return worker

    def close(self) -> None:
        for worker in self.started:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait(timeout=10)
            if worker.process.stdout is not None:
                worker.process.stdout.close()


@pytest.fixture
def workers(tmp_path: Path, pg_env: Settings) -> Iterator[Workers]:
    pool = Workers(tmp_path)
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
async def services(pg_env: Settings) -> AsyncIterator[Services]:
    """Services on the same database for the test itself; its runner is NOT started, so
    every job here runs in the worker subprocesses."""
    async with build_services(pg_env) as built:
        yield built


async def wait_for(
    services: Services,
    job_id: str,
    condition: Callable[[JobRecord], bool],
    timeout: float = 90,
    what: str = "the condition",
) -> JobRecord:
    """Poll the job until ``condition`` holds; fail (with the job's state) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        job = await services.jobs.get(job_id)
        if condition(job):
            return job
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out waiting for {what}: {job.status} {job.counters} {job.log[-5:]}"
            )
        if job.status in ("failed", "cancelled"):
            raise AssertionError(f"job {job.status} while waiting for {what}: {job.error}")
        await asyncio.sleep(0.1)


def processed(job: JobRecord) -> int:
    return int(job.counters.get("pages_processed", 0))


@dataclass(frozen=True)
class DbCounts:
    pages: int  # live page rows
    distinct_pages: int  # distinct Confluence page ids among them
    chunks: int  # chunk rows of those pages
    duplicate_chunks: int  # (page, ordinal) pairs stored more than once
    pages_without_chunks: int


def db_counts(url: str, source_id: str) -> DbCounts:
    with psycopg.connect(url) as conn:
        row: Any = conn.execute(
            "SELECT count(*), count(DISTINCT confluence_page_id) FROM pages "
            "WHERE source_id = %s AND NOT is_deleted",
            (source_id,),
        ).fetchone()
        pages, distinct = int(row[0]), int(row[1])
        row = conn.execute(
            "SELECT count(*) FROM chunks c JOIN pages p ON p.id = c.page_id WHERE p.source_id = %s",
            (source_id,),
        ).fetchone()
        chunks = int(row[0])
        row = conn.execute(
            "SELECT count(*) FROM (SELECT c.page_id, c.ordinal FROM chunks c JOIN pages p "
            "ON p.id = c.page_id WHERE p.source_id = %s GROUP BY 1, 2 HAVING count(*) > 1) d",
            (source_id,),
        ).fetchone()
        duplicates = int(row[0])
        row = conn.execute(
            "SELECT count(*) FROM pages p WHERE p.source_id = %s AND NOT p.is_deleted AND "
            "NOT EXISTS (SELECT 1 FROM chunks c WHERE c.page_id = p.id)",
            (source_id,),
        ).fetchone()
        empty = int(row[0])
    return DbCounts(pages, distinct, chunks, duplicates, empty)


def body_fetches(server: EmulatorServer) -> Counter[str]:
    """How many times each page was downloaded with its body (successful requests only)."""
    fetched: Counter[str] = Counter()
    for record in list(server.state.requests):
        if record.status != 200 or "/content/search" not in record.path:
            continue
        query = parse_qs(record.query)
        if "body.storage" not in ",".join(query.get("expand", [])):
            continue
        cql = " ".join(query.get("cql", []))
        if re.match(r"id\s+(in|=)", cql, re.IGNORECASE):  # id in ("1","2") | id = "1"
            fetched.update(re.findall(r'"(\d+)"', cql))
    return fetched


async def add_source(services: Services, server: EmulatorServer, *spaces: str) -> str:
    """A source on the emulator, saved without queueing a job."""
    from tests.ingest.conftest import new_source

    try:
        source, _ = await services.sources.add(new_source(server, *spaces), start=False)
    except ConfluenceRagError as exc:  # pragma: no cover - shows the reason in the failure
        raise AssertionError(exc.message) from exc
    return source.id
