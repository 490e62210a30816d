"""SIGKILL the real server three times at random points of a crawl: after each restart search
answers over HTTP while the job resumes, and in the end the job completes with every eligible
page stored exactly once (0 lost, 0 duplicated).

The server is the installed ``confluence-rag serve`` in its own process on a SQLite file; the
crawl reads a 300-page emulated Cloud space and embeds through the fake OpenAI-compatible server.
The emulator holds every body fetch that includes one chosen page until the last kill, so each
kill provably lands before the crawl's end, however fast the machine (a little latency per
request only keeps each kill near its drawn point); after each restart the test waits for the
new server to take the job over before it looks for the next point.
The kill points are drawn from a seeded generator whose seed is in every failure message (set
``KILL9_SEED`` to replay one). A resumed job lists the space again and skips every page already
stored at the listed version: that is what keeps it from duplicating work or pages.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.reliability.crawl_audit import audit_sqlite, eligible_ids
from tests.reliability.live_server import ServeProcess, pages_stored

PAGES = 300
KILLS = 3
TERMINAL = ("completed", "failed", "cancelled")


def job_state(serve: ServeProcess, progress_id: str) -> dict[str, object]:
    response = httpx.get(f"{serve.url}/api/progress/{progress_id}", timeout=10)
    assert response.status_code == 200, response.text
    state: dict[str, object] = response.json()
    return state


def stored_ids(database: Path, source_id: str) -> set[str]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        rows = db.execute(
            "SELECT confluence_page_id FROM pages WHERE source_id = ? AND NOT is_deleted",
            (source_id,),
        ).fetchall()
    finally:
        db.close()
    return {row[0] for row in rows}


def job_checkpoint(database: Path, job_id: str) -> dict[str, object]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)
    try:
        (raw,) = db.execute("SELECT checkpoint FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        db.close()
    checkpoint: dict[str, object] = json.loads(raw)
    return checkpoint


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill9_the_server_three_times_mid_crawl(
    emulator_factory: EmulatorFactory, isolated_env: Path, tmp_path: Path
) -> None:
    seed = int(os.environ.get("KILL9_SEED") or random.SystemRandom().randrange(1 << 30))
    rng = random.Random(seed)
    why = f"(KILL9_SEED={seed})"
    server = emulator_factory("cloud", pages=PAGES, extra_spaces={}, latency_ms=30)
    settings = Settings(data_dir=isolated_env)
    expected = eligible_ids(server.state, settings)
    markers = server.state.markers("DEMO")
    # Three distinct points between 10% and 85% of the crawl, at least 10% apart.
    n = len(expected)
    points: list[int] = []
    while len(points) < KILLS:
        candidate = rng.randrange(n // 10, n * 85 // 100)
        if all(abs(candidate - p) >= n // 10 for p in points):
            points.append(candidate)
    points.sort()
    held_page = max(expected, key=int)
    gate = server.state.gates.add(path="/content/search", query=f'"{held_page}"')

    database = settings.sqlite_path
    log = tmp_path / "serve.log"
    with FakeEmbeddingServer(dimension=32, delay_seconds=0.01) as embeddings:
        env = {
            **os.environ,
            **embeddings.settings_env(),
            "CONFLUENCE_RAG_JOB_HEARTBEAT_SECONDS": "0.2",
            "CONFLUENCE_RAG_JOB_LEASE_SECONDS": "1.5",
            "CONFLUENCE_RAG_LOG_LEVEL": "WARNING",
        }
        serve = ServeProcess(env, log).start()
        try:
            added = httpx.post(
                f"{serve.url}/api/confluence/sources",
                json={
                    "confluence_url": server.site_url,
                    "flavour": "cloud",
                    "user_email": DEMO_EMAIL,
                    "api_token": DEMO_API_TOKEN,
                    "space_key": "DEMO",
                },
                timeout=60,
            )
            assert added.status_code == 201, added.text
            source_id = added.json()["source_id"]
            progress_id = added.json()["progress_id"]

            for kills, point in enumerate(points):
                deadline = time.monotonic() + 120
                while pages_stored(database, source_id) < point:
                    state = job_state(serve, progress_id)
                    assert state["status"] not in TERMINAL, f"{state} {why}"
                    assert time.monotonic() < deadline, f"no progress to {point} {why}"
                    time.sleep(0.02)
                assert serve.kill9() == -9
                at_kill = stored_ids(database, source_id)
                assert point <= len(at_kill) < n, f"killed at {len(at_kill)} of {n} {why}"

                serve = ServeProcess(env, log).start()
                # Search answers at once on the restarted server, before the job is done. (By
                # keyword: the fake embeddings make the semantic half of hybrid ranking noise.)
                page_id, marker = next((p, m) for p, m in sorted(markers.items()) if p in at_kill)
                found = httpx.post(
                    f"{serve.url}/api/search",
                    json={"query": marker, "limit": 5, "retriever": "keyword"},
                    timeout=30,
                )
                assert found.status_code == 200, found.text
                hits = found.json()["results"]
                assert hits and hits[0]["page_id"] == f"{source_id}:{page_id}", f"{hits} {why}"
                assert job_state(serve, progress_id)["status"] in ("queued", "running")
                # The next kill must interrupt this server's own attempt, not precede it.
                deadline = time.monotonic() + 120
                while job_checkpoint(database, progress_id).get("attempt") != kills + 2:
                    assert time.monotonic() < deadline, f"the restart never resumed {why}"
                    time.sleep(0.05)
            gate.release()

            deadline = time.monotonic() + 240
            while (state := job_state(serve, progress_id))["status"] not in TERMINAL:
                assert time.monotonic() < deadline, f"the job never finished: {state} {why}"
                time.sleep(0.2)
            assert state["status"] == "completed", f"{state} {why}"
            assert any("orphaned" in line for line in state["log"]), state["log"]  # type: ignore[union-attr]
            # One attempt per process that ran it: the first plus one after each kill.
            assert job_checkpoint(database, progress_id)["attempt"] == KILLS + 1, why
        finally:
            serve.stop()

    audit = audit_sqlite(database, source_id)
    assert audit.clean, f"{audit.problems()} {why}"
    assert set(audit.versions) == expected, f"lost {sorted(expected - set(audit.versions))} {why}"
    assert audit.page_rows == len(expected) and not audit.deleted, why
    for page_id, version in audit.versions.items():
        assert version == server.state.content(page_id).version, why
