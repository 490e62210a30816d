"""A crawl whose writes start failing mid-way ends, with the error, whatever it could record.

``RLIMIT_FSIZE`` makes every write past a size fail with EFBIG (Python ignores SIGXFSZ), so
SQLite's WAL stops growing mid-crawl and the pages fail. When even the job's own "failed" record
cannot be written, the runner hands the error to whoever waits for the job (``JobRunner``'s
``_unrecorded``); before, ``confluence-rag crawl`` then waited forever for the store to say the
job had finished. Which of the two happens depends on where the WAL stands when the limit hits;
either way the command must exit 1 naming the error, within the timeout.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"
LIMIT_BYTES = 400 * 1024  # well below what 80 pages take (~2.5 MB of database + WAL)


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT_BYTES, LIMIT_BYTES))


@pytest.mark.slow
def test_crawl_that_cannot_record_its_end_exits_with_the_error(
    emulator_factory: EmulatorFactory, isolated_env: Path
) -> None:
    server = emulator_factory("cloud", pages=80, extra_spaces={})
    with FakeEmbeddingServer(dimension=32) as embeddings:
        env = {
            **os.environ,
            **embeddings.settings_env(),
            "CONFLUENCE_RAG_DATA_DIR": str(isolated_env),
            "CONFLUENCE_API_TOKEN": DEMO_API_TOKEN,
        }
        added = subprocess.run(
            [str(EXECUTABLE), "add", server.site_url, "--space", "DEMO", "--flavour", "cloud",
             "--email", DEMO_EMAIL, "--no-crawl"],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert added.returncode == 0, added.stdout + added.stderr
        crawl = subprocess.run(
            [str(EXECUTABLE), "crawl", "DEMO"],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,  # the bug this guards against is a hang
            preexec_fn=_limit_file_size,
        )
    output = crawl.stdout + crawl.stderr
    assert crawl.returncode == 1, output
    assert "disk I/O error" in output and "Traceback" not in output, output
