"""The installed `confluence-rag` command in real subprocesses: add + crawl + search, Ctrl-C on
a running crawl, `serve` answering over a real socket, and `demo --no-serve` end to end."""

from __future__ import annotations

import json
import re
import signal
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from confluence_rag.cli.demo_cmd import SAMPLE_QUERIES
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from tests.cli.conftest import Cli
from tests.plugins.emulator import EmulatorFactory


@pytest.mark.slow  # five CLI processes, each importing the whole stack
def test_add_crawl_and_search_in_subprocesses(
    cli: Cli, emulator_factory: EmulatorFactory, isolated_env: Path
) -> None:
    server = emulator_factory("cloud", pages=10)
    cli.env["CONFLUENCE_API_TOKEN"] = DEMO_API_TOKEN
    added = cli.run(
        "add",
        server.site_url,
        "--space",
        "DEMO",
        "--flavour",
        "cloud",
        "--email",
        DEMO_EMAIL,
        "--no-crawl",
    )
    assert added.returncode == 0, added.stderr
    crawled = cli.run("crawl", "DEMO")
    assert crawled.returncode == 0, crawled.stdout + crawled.stderr
    assert "Done:" in crawled.stdout

    page_id, marker = sorted(server.state.markers("DEMO").items())[0]
    found = cli.run("search", marker, "--json", "--retriever", "keyword")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["results"]
    assert hits and hits[0]["page_id"].endswith(f":{page_id}")

    # The token is stored encrypted: its bytes are nowhere in the database files.
    for path in isolated_env.glob("*.sqlite3*"):
        assert DEMO_API_TOKEN.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_ctrl_c_cancels_the_crawl_cleanly(
    cli: Cli, emulator_factory: EmulatorFactory, isolated_env: Path
) -> None:
    # The crawl fetches bodies in batches of 25 ids (one request each): the emulator lets the
    # first batch through and holds the second, so the crawl is provably mid-way when Ctrl-C
    # arrives, however fast or slow the machine.
    server = emulator_factory("cloud", pages=50, extra_spaces={})
    gate = server.state.gates.add(path="/content/search", query="body.storage", after=1)
    cli.env["CONFLUENCE_API_TOKEN"] = DEMO_API_TOKEN
    added = cli.run(
        "add",
        server.site_url,
        "--space",
        "DEMO",
        "--flavour",
        "cloud",
        "--email",
        DEMO_EMAIL,
        "--no-crawl",
    )
    assert added.returncode == 0, added.stderr

    process = cli.popen("crawl", "DEMO")
    try:
        gate.wait_held(1, timeout=120)
        deadline = time.monotonic() + 120
        database = isolated_env / "confluence-rag.sqlite3"
        while _pages_stored(database) < 25:  # the batch let through reaches the index
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the crawl did not store the pages let through"
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        # The cancel waits at most 15 s for the job and 10 s for its tasks; the rest is a busy
        # machine's slack (a CI run under load once took over 60 s here).
        stdout, stderr = process.communicate(timeout=180)
    finally:
        gate.release()
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, stdout + stderr
    assert "Cancelling" in stdout and "cancelled" in stdout
    assert "Traceback" not in stderr

    (source,) = json.loads(cli.run("sources", "--json").stdout)["sources"]
    assert source["progress_id"] is None, "the job is still active after Ctrl-C"
    assert source["total_pages"] == 25


def _pages_stored(database: Path) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute("SELECT count(*) FROM pages").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # tables not created yet, or busy


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_serve_answers_and_stops_on_ctrl_c(cli: Cli) -> None:
    port = _free_port()
    process = cli.popen("serve", "--port", str(port))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "serve never answered"
                time.sleep(0.2)
        assert health.status_code == 200 and health.json()["database"] == "ok"
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
    finally:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stdout + stderr


def test_serve_refuses_a_public_address_without_a_token(cli: Cli) -> None:
    result = cli.run("serve", "--host", "0.0.0.0", "--port", str(_free_port()), timeout=60)
    assert result.returncode == 1
    assert "CONFLUENCE_RAG_API_TOKEN" in result.stderr and "Traceback" not in result.stderr


# The sample-site page a person recognises as the answer to each of the demo's sample searches.
SAMPLE_ANSWERS = (
    "Rolling Back a Failed Deployment",
    "Requesting Production Database Access",
    "On-call Handbook",
)


@pytest.mark.slow
@pytest.mark.model
@pytest.mark.timeout(1500)  # 112 pages through the real model: minutes when the cores are busy
def test_demo_crawls_the_sample_site_and_its_sample_searches_find_the_answers(
    cli: Cli, isolated_env: Path
) -> None:
    # What `make demo` does: the sample site, the real default (local MiniLM) model.
    for name in [name for name in cli.env if name.startswith("CONFLUENCE_RAG_OPENAI")]:
        del cli.env[name]
    cli.env.pop("CONFLUENCE_RAG_EMBEDDER")
    result = cli.run("demo", "--no-serve", "--emulator-port", str(_free_port()), timeout=1400)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Confluence emulator (cloud), the sample site" in out and "Added" in out
    assert "Done:" in out and (isolated_env / "demo" / "confluence-rag.sqlite3").exists()
    answers = dict(zip(SAMPLE_QUERIES, SAMPLE_ANSWERS, strict=True))
    for query, answer in answers.items():
        printed = out.split(f'Sample search: "{query}"', 1)[1].split("Sample search:")[0]
        titles = re.findall(r"^[123]\. (.+?)  \[", printed, re.MULTILINE)
        assert len(titles) == 3 and answer in titles, (query, printed[:900])


@pytest.mark.slow  # two demo runs in subprocesses
def test_demo_run_twice_reuses_its_index(cli: Cli, isolated_env: Path) -> None:
    args = ("demo", "--no-serve", "--generated", "4", "--emulator-port", str(_free_port()))
    first = cli.run(*args)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Added" in first.stdout and "Done:" in first.stdout
    again = cli.run(*args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Reusing the demo source" in again.stdout and "Done:" in again.stdout
    assert " 0 chunks embedded" in again.stdout, "the re-run embedded unchanged pages again"
    # The user's own index is untouched: the demo keeps to <data dir>/demo.
    assert json.loads(cli.run("sources", "--json").stdout)["count"] == 0


@pytest.mark.slow
def test_demo_serves_the_api_until_ctrl_c(cli: Cli) -> None:
    port = _free_port()
    process = cli.popen("demo", "--generated", "3", "--port", str(port), "--emulator-port", "0")
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the demo never served"
                time.sleep(0.3)
        assert health.status_code == 200 and health.json()["model_loaded"] is True
        sources = httpx.get(f"http://127.0.0.1:{port}/api/confluence/sources", timeout=10).json()
        assert sources["count"] == 1 and sources["sources"][0]["total_pages"] > 0
        found = httpx.post(
            f"http://127.0.0.1:{port}/api/search", json={"query": "deployment"}, timeout=30
        )
        assert found.status_code == 200 and found.json()["count"] >= 1
    finally:
        process.send_signal(signal.SIGINT)
        # The cancel waits at most 15 s for the job and 10 s for its tasks; the rest is a busy
        # machine's slack (a CI run under load once took over 60 s here).
        stdout, stderr = process.communicate(timeout=180)
    assert process.returncode == 0, stdout + stderr
    assert f"http://127.0.0.1:{port}/docs" in stdout and "Stopped." in stdout
    assert f"Web UI:    http://127.0.0.1:{port}/" in stdout
    assert f"MCP:       http://127.0.0.1:{port}/mcp" in stdout
