"""Crawl onto a really full disk, then free space and crawl again: the steps of
``test_disk_full.py`` that must see the small filesystem, run as one process.

Usage: python diskfull_driver.py CONFIG.json   (prints a JSON report on stdout)

Why a separate process: the data dir lives on a tmpfs of a few MB mounted here, and the test
runs this script in a private mount namespace (``unshare --mount``; without root also
``--user --map-root-user``, where an unprivileged user may mount a tmpfs), so only this process
and its children see the small disk, and it vanishes with them. Every step that needs it
happens here. The DB files are copied out (while no process has them open) for the test to
audit.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"
DB_FILES = ("confluence-rag.sqlite3", "confluence-rag.sqlite3-wal", "confluence-rag.sqlite3-shm")


RESERVE = DB_FILES[0] + "-reserve"


def run(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(EXECUTABLE), *args], env=env, capture_output=True, text=True, timeout=300
    )
    return {"rc": done.returncode, "out": done.stdout + done.stderr, "stdout": done.stdout}


def fill(path: Path, leave: int) -> None:
    """Take the free blocks but ``leave`` bytes: the failed crawl released the store's reserve
    for its bookkeeping, and on exit SQLite may have checkpointed its WAL away, so the disk can
    have room again; a disk that stays (nearly) full is what the next steps are about. The few
    KB left are what opening a WAL database needs for its -wal and -shm files."""
    free = shutil.disk_usage(path.parent).free
    if free > leave:
        with open(path, "wb") as filler:
            os.posix_fallocate(filler.fileno(), 0, free - leave)


def snapshot(data_dir: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in DB_FILES:
        if (data_dir / name).exists():
            shutil.copyfile(data_dir / name, target / name)


def stored_ids(database: Path) -> list[str]:
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        return [r[0] for r in db.execute("SELECT confluence_page_id FROM pages")]
    finally:
        db.close()


def main(config: dict[str, Any]) -> dict[str, Any]:
    disk = Path(config["mount_dir"])
    out = Path(config["out_dir"])
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={config['size_kb']}k", "tmpfs", str(disk)],
        check=True,
    )
    report: dict[str, Any] = {}
    try:
        data_dir = disk / "data"
        env = {
            **config["env"],
            "CONFLUENCE_RAG_DATA_DIR": str(data_dir),
            "CONFLUENCE_API_TOKEN": config["token"],
        }
        report["add"] = run(
            env, "add", config["site_url"], "--space", config["space"], "--flavour", "cloud",
            "--email", config["email"], "--no-crawl",
        )  # fmt: skip
        report["crawl_full"] = run(env, "crawl", config["space"])
        report["reserve_after_full"] = (data_dir / RESERVE).exists()
        fill(disk / "filler", leave=48 * 1024)
        report["free_bytes"] = shutil.disk_usage(disk).free
        snapshot(data_dir, out / "full")
        stored = stored_ids(out / "full" / DB_FILES[0])
        page_id = next(p for p in sorted(config["markers"]) if p in stored)
        report["search_page"] = page_id
        report["search_full"] = run(
            env, "search", config["markers"][page_id], "--json", "--retriever", "keyword"
        )
        # Not a byte left: even opening the database fails, and it should say why.
        fill(disk / "filler-all", leave=0)
        report["search_no_room"] = run(env, "search", "anything", "--retriever", "keyword")
        # Free space (grow the filesystem) and run the crawl again.
        for filler in ("filler", "filler-all"):
            (disk / filler).unlink(missing_ok=True)
        subprocess.run(["mount", "-o", f"remount,size={config['grow_kb']}k", str(disk)], check=True)
        report["crawl_again"] = run(env, "crawl", config["space"])
        report["reserve_after_again"] = (data_dir / RESERVE).exists()
        snapshot(data_dir, out / "after")
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    return report


if __name__ == "__main__":
    print(json.dumps(main(json.loads(Path(sys.argv[1]).read_text()))))
