"""The sync benchmark (bench/sync.py) runs, and its accounting holds on a small source of three
spaces: what the sync embedded is exactly what changed, and a sync with no changes fetches
nothing by id (the pages the rules skipped are remembered, not fetched again)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_sync_bench_runs_and_its_figures_add_up() -> None:
    done = subprocess.run(
        [sys.executable, "bench/sync.py", "--pages", "150", "--latency-ms", "0"]
        + ["--embedder", "hash", "--change", "0.04", "--spaces", "3"],
        cwd=REPO,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = {line[:31].strip(): line[31:].strip() for line in done.stdout.splitlines()}
    assert lines["embedded == changed"] == "yes", done.stdout
    assert int(lines["chunks whose text changed"]) > 0, done.stdout
    listing = lines["no-change sync's listings"]
    assert listing.endswith("0 to fetch by id"), listing
    skipped = re.search(r"(\d+) skipped at that version before", listing)
    assert skipped is not None and int(skipped.group(1)) > 0, listing
    assert lines["no-change sync"].split(", ")[1] == "0 embedding calls", done.stdout
