"""A worker process killed with SIGKILL mid-crawl: the job is resumed by the next start and
completes with every page stored exactly once (nothing lost, nothing duplicated)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from confluence_rag.records import JobRecord
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.conftest import new_source, run
from tests.plugins.emulator import EmulatorFactory

WORKER = Path(__file__).with_name("crawl_worker.py")
REPO = Path(__file__).resolve().parents[2]


def start_worker(job_id: str, stderr: Path) -> subprocess.Popen[str]:
    # This checkout's package first: the venv's editable install may point at another one.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)])}
    with stderr.open("w") as errors:
        worker = subprocess.Popen(
            [sys.executable, str(WORKER), job_id],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
        )
    assert worker.stdout is not None
    assert worker.stdout.readline().strip() == "ready", stderr.read_text()
    return worker


async def read_job(settings: Settings, job_id: str) -> JobRecord:
    async with build_services(settings) as services:
        return await services.jobs.get(job_id)


@pytest.mark.slow
def test_sigkill_mid_crawl_then_resume(
    fast_settings: Settings, emulator_factory: EmulatorFactory, tmp_path: Path
) -> None:
    # Bodies come in batches of 25 ids (one request each): the emulator lets the first batch
    # through and holds the second, so the worker is provably mid-crawl, 25 of 50 pages stored,
    # when it is killed, however fast or slow the machine.
    server = emulator_factory("cloud", pages=50, extra_spaces={})
    gate = server.state.gates.add(path="/content/search", query="body.storage", after=1)
    expected = server.state.current_ids("DEMO")
    assert len(expected) == 50

    async def add() -> tuple[str, str]:
        async with build_services(fast_settings) as services:
            source, job = await services.sources.add(new_source(server))
            assert job is not None
            return source.id, job.id

    source_id, job_id = run(add())
    worker = start_worker(job_id, tmp_path / "worker.stderr")
    try:
        gate.wait_held(1)
        deadline = time.monotonic() + 120
        while True:
            job = run(read_job(fast_settings, job_id))
            if job.counters.get("pages_processed", 0) >= 25:
                break
            assert job.status in ("queued", "running"), job.error
            assert time.monotonic() < deadline, "the worker made no progress"
            time.sleep(0.1)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        assert worker.stdout is not None
        worker.stdout.close()
    assert worker.returncode == -signal.SIGKILL

    killed = run(read_job(fast_settings, job_id))
    assert killed.status == "running"  # nobody said otherwise: the lease tells it is orphaned
    assert killed.lease_owner is not None
    gate.release()

    async def resume() -> None:
        async with build_services(fast_settings) as services:
            before = await services.store.page_versions(source_id)
            assert len(before) == 25
            services.jobs.start()
            done = await services.jobs.wait(job_id, timeout=120)
            assert done.status == "completed", done.error
            assert done.checkpoint["attempt"] == 2
            assert any("orphaned by a crash" in line for line in done.log)
            c = done.counters
            assert c["pages_unchanged"] >= len(before)
            after = await services.store.page_versions(source_id)
            assert set(after) <= expected
            assert len(after) + c["pages_skipped"] + c["pages_failed"] == len(expected)
            assert len(after) == c["pages_processed"] + c["pages_unchanged"]
            assert await services.store.count_pages(source_id) == len(after)
            for page_id, (version, deleted) in after.items():
                assert not deleted and version == server.state.content(page_id).version
            source = await services.sources.get(source_id)
            assert source.sync_status == "active" and source.last_sync_at is not None

    run(resume())
