"""`confluence-rag emulator`: help documents the fault grammar, bad input exits 2, and the
blocking command serves a site whose URL and credentials it prints."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import typer
from typer.testing import CliRunner

from confluence_rag.cli import emulator_cmd

# The command on its own Typer app, as cli/main.py registers it: this test does not depend on
# the other commands importing cleanly.
APP_SOURCE = """
import typer
from confluence_rag.cli import emulator_cmd
app = typer.Typer()
app.callback()(lambda: None)
emulator_cmd.register(app)
app()
"""
app = typer.Typer()
app.callback()(lambda: None)
emulator_cmd.register(app)
runner = CliRunner()


def test_help_documents_options_and_fault_grammar() -> None:
    result = runner.invoke(app, ["emulator", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for word in ("--port", "--flavour", "--generated", "--seed", "--latency-ms", "--faults",
                 "ratelimit403", "path~TEXT", "retry-after"):  # fmt: skip
        assert word in text


def test_bad_input_exits_2_with_a_message() -> None:
    bad_faults = runner.invoke(app, ["emulator", "--faults", "418:0.5", "--port", "0"])
    assert bad_faults.exit_code == 2
    assert "unknown fault kind" in bad_faults.output
    bad_flavour = runner.invoke(app, ["emulator", "--flavour", "server", "--port", "0"])
    assert bad_flavour.exit_code == 2
    assert "flavour" in bad_flavour.output


def test_command_serves_and_prints_credentials() -> None:
    command = [sys.executable, "-c", APP_SOURCE, "emulator",
               "--port", "0", "--generated", "5", "--flavour", "datacenter"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any("Press Ctrl-C" in line for line in lines):
            assert time.monotonic() < deadline and process.poll() is None, lines
            lines.append(process.stdout.readline())
        site = next(line.split()[-1] for line in lines if "Site URL:" in line)
        assert any("demo-pat" in line for line in lines)
        response = httpx.get(
            site + "/rest/api/space/DEMO", headers={"Authorization": "Bearer demo-pat"}
        )
        deadline = time.monotonic() + 60  # uvicorn may still be finishing its start-up
        while response.status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
            response = httpx.get(
                site + "/rest/api/space/DEMO", headers={"Authorization": "Bearer demo-pat"}
            )
        assert response.json()["key"] == "DEMO"
    finally:
        process.terminate()
        process.wait(timeout=20)
        if process.stdout is not None:
            process.stdout.close()
