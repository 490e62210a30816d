"""CLI commands in-process (Typer's CliRunner) against a real emulator and a tmp index."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confluence_rag.cli.main import app
from confluence_rag.cli.serve_cmd import is_loopback
from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
from tests.cli.conftest import Cli
from tests.plugins.emulator import EmulatorFactory

COMMANDS = ("add", "sources", "crawl", "sync", "search", "delete", "serve", "emulator", "demo")


def test_every_command_is_listed_and_has_help(cli: Cli) -> None:
    listed = {command.name for command in app.registered_commands}
    assert set(COMMANDS) <= listed
    top = cli("--help")
    assert top.exit_code == 0
    for name in COMMANDS:
        assert name in top.output
        result = cli(name, "--help")
        assert result.exit_code == 0, (name, result.output)
        assert "Usage:" in result.output and len(result.output) > 100


def test_sources_when_there_are_none(cli: Cli) -> None:
    result = cli("sources")
    assert result.exit_code == 0 and "No sources yet" in result.output
    as_json = cli("sources", "--json")
    assert json.loads(as_json.stdout) == {"sources": [], "count": 0}


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("add", "https://x.atlassian.net", "--space", "DEV"), 2, "CONFLUENCE_API_TOKEN"),
        (("add", "not a url", "--space", "DEV", "--token", "t"), 1, "URL"),
        (("crawl", "nothing"), 1, "no source matches"),
        (("sync", "nothing"), 1, "no source matches"),
        (("delete", "nothing", "--yes"), 1, "no source matches"),
        (("search", "   "), 2, "empty"),
        (("search", "x" * 1001), 2, "1000"),
        (("serve", "--host", "0.0.0.0"), 1, "CONFLUENCE_RAG_API_TOKEN"),
    ],
)
def test_bad_input_gives_a_clear_message_and_exit_code(
    cli: Cli, args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(*args)
    assert result.exit_code == code, result.output
    assert "Error:" in result.stderr and message in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("add", "https://x", "--space", "DEV", "--token", "t", "--flavour", "z"),
        ("search", "q", "--mode", "books"),
        ("search", "q", "--retriever", "magic"),
        ("search", "q", "--limit", "0"),
        ("crawl",),
    ],
)
def test_usage_errors_exit_2(cli: Cli, args: tuple[str, ...]) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output and "Traceback" not in result.output


def test_bad_credentials_save_nothing(cli: Cli, emulator_factory: EmulatorFactory) -> None:
    server = emulator_factory("cloud", pages=3)
    result = cli(
        "add",
        server.site_url,
        "--space",
        "DEMO",
        "--flavour",
        "cloud",
        "--email",
        DEMO_EMAIL,
        "--token",
        "wrong",
    )
    assert result.exit_code == 1
    assert "Error:" in result.stderr and "wrong" not in result.output
    assert json.loads(cli("sources", "--json").stdout)["count"] == 0


def test_a_bad_setting_is_named(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONFLUENCE_RAG_MAX_RETRIES", "-1")
    result = cli("sources")
    assert result.exit_code == 1
    assert "CONFLUENCE_RAG_MAX_RETRIES" in result.stderr and "Traceback" not in result.output


def test_loopback_detection() -> None:
    for host in ("127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "192.168.1.10", "example.com"):
        assert not is_loopback(host), host


def _sources(cli: Cli) -> list[dict[str, Any]]:
    result = cli("sources", "--json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout)["sources"])


def test_add_crawl_search_sync_delete(
    cli: Cli, emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = emulator_factory("cloud", pages=12)
    monkeypatch.setenv("CONFLUENCE_EMAIL", DEMO_EMAIL)
    monkeypatch.setenv("CONFLUENCE_API_TOKEN", DEMO_API_TOKEN)

    added = cli(
        "add",
        server.site_url,
        "--space",
        "DEMO",
        "--flavour",
        "cloud",
        "--no-crawl",
        "--tag",
        "cli",
    )
    assert added.exit_code == 0, added.output
    assert "Added" in added.output and DEMO_API_TOKEN not in added.output
    (source,) = _sources(cli)
    assert source["total_pages"] == 0 and source["tags"] == ["cli"]

    crawled = cli("crawl", "DEMO")  # a space key naming one source is enough
    assert crawled.exit_code == 0, crawled.output
    assert "Done:" in crawled.output and "pages/s" in crawled.output
    (source,) = _sources(cli)
    assert source["total_pages"] > 0 and source["last_sync_at"] is not None

    page_id, marker = sorted(server.state.markers("DEMO").items())[0]
    found = cli("search", marker, "--json", "--retriever", "keyword")
    assert found.exit_code == 0, found.output
    results = json.loads(found.stdout)["results"]
    assert results and results[0]["page_id"] == f"{source['source_id']}:{page_id}"
    shown = cli("search", marker, "--space", "DEMO", "--limit", "2")
    assert shown.exit_code == 0 and results[0]["title"] in shown.output
    assert "<mark>" not in shown.output
    # A space the source does not have is named as such (exit 2), never "no results".
    elsewhere = cli("search", marker, "--space", "OPS", "--json")
    assert elsewhere.exit_code == 2 and elsewhere.stdout == ""
    assert "'OPS' is not in any indexed source; spaces: DEMO" in elsewhere.stderr

    table = cli("sources")
    assert table.exit_code == 0 and source["source_id"] in table.output

    synced = cli("sync", source["source_id"])
    assert synced.exit_code == 0, synced.output
    assert "Done:" in synced.output

    kept = cli("delete", source["source_id"], input="n\n")
    assert kept.exit_code != 0 and len(_sources(cli)) == 1
    deleted = cli("delete", source["source_id"], "--yes")
    assert deleted.exit_code == 0 and "Deleted" in deleted.output
    assert _sources(cli) == []


def test_add_crawls_in_the_foreground_by_default(
    cli: Cli, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=6)
    result = cli(
        "add",
        server.site_url,
        "--space",
        "DEMO",
        "--flavour",
        "cloud",
        "--email",
        DEMO_EMAIL,
        "--token",
        DEMO_API_TOKEN,
    )
    assert result.exit_code == 0, result.output
    assert "Done:" in result.output
    (source,) = _sources(cli)
    assert source["total_pages"] > 0 and source["status"] == "active"
