"""CLI test helpers: run `confluence-rag` in-process (CliRunner) or as a real subprocess, with
settings pointing at a tmp data dir and a fast real embeddings server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from confluence_rag.cli.main import app
from tests.ingest.fake_embeddings import FakeEmbeddingServer

EXECUTABLE = Path(sys.executable).parent / "confluence-rag"


@pytest.fixture(scope="session")
def cli_embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def cli_env(
    isolated_env: Path,
    cli_embeddings: FakeEmbeddingServer,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """The environment every CLI run here gets (also set in this process for CliRunner), and
    an index migrated ahead (a copy of the session's template: commands still check it)."""
    isolated_env.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template, isolated_env / "confluence-rag.sqlite3")
    for name, value in cli_embeddings.settings_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CONFLUENCE_API_TOKEN", raising=False)
    monkeypatch.delenv("CONFLUENCE_EMAIL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")  # Rich output wide enough to assert on one line
    return dict(os.environ)


class Cli:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None) -> Result:
        """In-process, through Typer's test runner."""
        return self.runner.invoke(app, list(args), input=input, catch_exceptions=False)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """The installed `confluence-rag` command in a real subprocess."""
        return subprocess.run(
            [str(EXECUTABLE), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        # Unbuffered, so a test that kills a stuck command still sees all it printed.
        return subprocess.Popen(
            [str(EXECUTABLE), *args],
            env={**self.env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)
