"""`confluence-rag doctor`: a healthy install passes every check; a damaged database, an
unreachable source, a changed secret key, a dead embedding endpoint and a full disk each fail
their own row and make the command exit 1."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import Result

from confluence_rag.emulator import DEMO_PAT, EmulatorConfig, EmulatorServer
from tests.cli.conftest import Cli


def rows(result: Result) -> dict[str, str]:
    """Check name -> status word, read from the printed table."""
    found: dict[str, str] = {}
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in line.replace("┃", "│").split("│")]
        cells = [cell for cell in cells if cell]
        if len(cells) >= 2 and cells[1] in ("OK", "WARN", "FAIL", "SKIP"):
            found[cells[0]] = cells[1]
    return found


def add(cli: Cli, server: EmulatorServer) -> str:
    result = cli(
        "add", server.site_url, "--space", "DEMO", "--token", DEMO_PAT,
        "--flavour", "datacenter", "--no-crawl",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    listing = cli("sources", "--json")
    assert listing.exit_code == 0, listing.output
    sources = json.loads(listing.output)
    source_id: str = (sources["sources"] if isinstance(sources, dict) else sources)[0]["source_id"]
    return source_id


def test_a_healthy_install_passes(cli: Cli, dc_emulator: EmulatorServer) -> None:
    source_id = add(cli, dc_emulator)
    result = cli("doctor")
    assert result.exit_code == 0, result.output
    status = rows(result)
    assert status["disk"] == "OK" and status["database"] == "OK"
    assert status["embedding model"] == "OK"
    assert status[f"source {source_id}"] == "OK", result.output
    text = " ".join(result.output.split())
    assert "integrity ok" in text and "journal wal" in text and "schema at head" in text
    assert "All checks passed" in text


def test_an_unreachable_source_and_a_full_disk_fail(cli: Cli) -> None:
    with EmulatorServer(EmulatorConfig(flavour="datacenter", pages=3)) as server:
        source_id = add(cli, server)
    # the emulator is gone: the source's site refuses connections
    result = cli("doctor", "--min-free-mb", str(10**12))
    assert result.exit_code == 1, result.output
    status = rows(result)
    assert status[f"source {source_id}"] == "FAIL"
    assert status["disk"] == "FAIL" and status["database"] == "OK"
    text = " ".join(result.output.split())
    assert "Could not reach Confluence" in text and "below the" in text
    assert "2 check(s) failed" in text


def test_a_changed_secret_key_fails_the_source(
    cli: Cli, dc_emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    source_id = add(cli, dc_emulator)
    (Path(os.environ["CONFLUENCE_RAG_DATA_DIR"]) / "secret.key").unlink()  # a new key next time
    result = cli("doctor")
    assert result.exit_code == 1
    assert rows(result)[f"source {source_id}"] == "FAIL"
    assert "CONFLUENCE_RAG_SECRET_KEY" in " ".join(result.output.split())


def test_a_dead_embedding_endpoint_fails(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENCE_RAG_OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CONFLUENCE_RAG_MAX_RETRIES", "0")
    result = cli("doctor")
    assert result.exit_code == 1
    status = rows(result)
    assert status["embedding model"] == "FAIL" and status["sources"] == "OK"


def test_a_damaged_database_fails_and_is_not_touched(cli: Cli) -> None:
    path = Path(os.environ["CONFLUENCE_RAG_DATA_DIR"]) / "confluence-rag.sqlite3"
    data = bytearray(path.read_bytes())
    assert len(data) > 4 * 4096
    data[2 * 4096 : 4 * 4096] = b"\xa5" * (2 * 4096)  # scribble over b-tree pages
    path.write_bytes(bytes(data))
    result = cli("doctor")
    assert result.exit_code == 1, result.output
    status = rows(result)
    assert status["database"] == "FAIL"
    assert status["embedding model"] == "SKIP" and status["sources"] == "SKIP"
    assert path.read_bytes() == bytes(data)  # read-only: nothing repaired or migrated


def test_no_index_yet_is_a_warning_not_a_failure(cli: Cli) -> None:
    (Path(os.environ["CONFLUENCE_RAG_DATA_DIR"]) / "confluence-rag.sqlite3").unlink()
    result = cli("doctor")
    assert rows(result)["database"] in ("WARN", "OK"), result.output
    assert result.exit_code == 0, result.output


def test_postgresql_connection_and_revision(
    cli: Cli, pg_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFLUENCE_RAG_DATABASE_URL", pg_database_url)
    fresh = cli("doctor")  # an empty database: a warning (the first start migrates it)
    assert fresh.exit_code == 0, fresh.output
    assert rows(fresh)["database"] == "WARN"
    assert "not migrated yet" in " ".join(fresh.output.split())
    result = cli("doctor")  # the first run opened the services, which migrated it
    assert result.exit_code == 0, result.output
    assert rows(result)["database"] == "OK"
    assert "PostgreSQL: connected, schema at head" in " ".join(result.output.split())

    unreachable = pg_database_url.rsplit("@", 1)[0] + "@127.0.0.1:9/nowhere"
    monkeypatch.setenv("CONFLUENCE_RAG_DATABASE_URL", unreachable)
    down = cli("doctor")
    assert down.exit_code == 1
    status = rows(down)
    assert status["database"] == "FAIL" and status["sources"] == "SKIP"
    assert "PostgreSQL not reachable" in " ".join(down.output.split())
