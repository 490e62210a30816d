"""A disk that fills up during a crawl: the job fails cleanly with a clear error, the index stays
usable (integrity ok, no half-written page, search answers on the still-full disk), and once
space is freed the next crawl completes with every eligible page exactly once.

How the disk is filled, and why: the data dir is put on a tmpfs of a few MB, so the kernel
itself answers ``ENOSPC`` to SQLite's writes, exactly as a full disk does (SQLite reports
SQLITE_FULL, the store raises StorageFull). Cheaper tricks were rejected: ``PRAGMA
max_page_count`` is SQLite refusing on our behalf, not the disk; ``RLIMIT_FSIZE`` gives EFBIG,
which SQLite reports as a generic I/O error rather than "disk full" (and is another failure).
The driver runs in a private mount namespace (``unshare --mount``; without root also ``--user
--map-root-user``, where an unprivileged user may mount a tmpfs), so the small filesystem is
seen only by it and vanishes with it, even if the test is killed. The steps that touch the small
disk run in that one driver process (``diskfull_driver.py``), through the installed
``confluence-rag`` command.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from confluence_rag.settings import Settings
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.reliability.crawl_audit import audit_sqlite, eligible_ids

DRIVER = Path(__file__).with_name("diskfull_driver.py")
REPO = Path(__file__).resolve().parents[2]
PAGES = 120
# An empty migrated index is ~0.2 MB and a full crawl of 120 pages ~4 MB (database + WAL):
# 3 MB runs out early in the crawl, 64 MB is plenty.
SIZE_KB = 3000
GROW_KB = 64_000


def jobs(database: Path) -> list[tuple[str, str | None]]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return list(db.execute("SELECT status, error FROM jobs ORDER BY created_at"))
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_disk_full_mid_crawl_fails_cleanly_and_the_index_stays_usable(
    emulator_factory: EmulatorFactory, tmp_path: Path, isolated_env: Path
) -> None:
    server = emulator_factory("cloud", pages=PAGES, extra_spaces={})
    expected = eligible_ids(server.state, Settings(data_dir=isolated_env))
    disk = tmp_path / "disk"
    disk.mkdir()
    out = tmp_path / "out"
    with FakeEmbeddingServer(dimension=32) as embeddings:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CONFLUENCE_RAG_")},
            **embeddings.settings_env(),
            # this checkout's package first: the venv's editable install may point elsewhere
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]),
        }
        config = {
            "mount_dir": str(disk),
            "out_dir": str(out),
            "size_kb": SIZE_KB,
            "grow_kb": GROW_KB,
            "env": env,
            "site_url": server.site_url,
            "space": "DEMO",
            "email": DEMO_EMAIL,
            "token": DEMO_API_TOKEN,
            "markers": server.state.markers("DEMO"),
        }
        config_path = tmp_path / "driver.json"
        config_path.write_text(json.dumps(config))
        # A private mount namespace: the tmpfs vanishes with the driver, even if it is killed.
        namespace = ["unshare", "--mount", "--propagation", "private"]
        if os.geteuid() != 0:
            namespace[1:1] = ["--user", "--map-root-user"]
        command = [*namespace, sys.executable, str(DRIVER), str(config_path)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=500)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["add"]["rc"] == 0, report["add"]["out"]

    # The crawl failed with a clear message and no traceback; the store gave its reserve back
    # to record that. The disk is then filled again for the rest.
    full = report["crawl_full"]
    assert full["rc"] == 1, full["out"]
    assert "the disk is full" in full["out"] and "Traceback" not in full["out"], full["out"]
    assert report["reserve_after_full"] is False
    assert report["free_bytes"] < 64 * 1024

    # The index on the full disk: the job recorded as failed with the reason, file intact, no
    # half-written page, and search answers from it.
    snapshot = out / "full" / "confluence-rag.sqlite3"
    ((status, error),) = jobs(snapshot)
    assert status == "failed" and error is not None and "disk is full" in error
    source_id = f"{server.site_url.removeprefix('http://')}:DEMO"
    audit = audit_sqlite(snapshot, source_id)
    assert audit.clean, audit.problems()
    assert 0 < len(audit.versions) < len(expected)
    assert set(audit.versions) <= expected
    search = report["search_full"]
    assert search["rc"] == 0, search["out"]
    assert "the disk is nearly full" in search["out"]  # no room to allocate the reserve again
    hits = json.loads(search["stdout"])["results"]
    assert hits and hits[0]["page_id"] == f"{source_id}:{report['search_page']}"

    # With not a byte left the database cannot even be opened: a plain message, not a driver's.
    no_room = report["search_no_room"]
    assert no_room["rc"] != 0 and "the disk is full" in no_room["out"], no_room["out"]
    assert "Traceback" not in no_room["out"] and "sqlalche" not in no_room["out"], no_room["out"]

    # Space freed: the next crawl completes, every eligible page exactly once.
    again = report["crawl_again"]
    assert again["rc"] == 0, again["out"]
    assert report["reserve_after_again"] is True
    after = out / "after" / "confluence-rag.sqlite3"
    assert [status for status, _ in jobs(after)] == ["failed", "completed"]
    audit = audit_sqlite(after, source_id)
    assert audit.clean, audit.problems()
    assert set(audit.versions) == expected and audit.page_rows == len(expected)
