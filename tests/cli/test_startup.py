"""`confluence-rag --help` starts fast: the commands import what is heavy (the services with
the store and the embedder, uvicorn, the HTTP app, MCP, the emulator) only when they run.

Checked by what a fresh interpreter has imported, not by timing: a timing test would depend on
how busy the machine is.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Never needed to list the commands or parse their options.
HEAVY = (
    "uvicorn",
    "fastapi",
    "mcp",
    "torch",
    "sentence_transformers",
    "confluence_rag.api",
    "confluence_rag.web",
    "confluence_rag.mcp",
    "confluence_rag.emulator",
)
# Every command module: none may load the services before its command runs.
LIGHT_COMMANDS = (
    "demo_cmd",
    "doctor_cmd",
    "emulator_cmd",
    "jobs_cmd",
    "mcp_cmd",
    "search_cmd",
    "serve_cmd",
    "sources_cmd",
    "worker_cmd",
)


def loaded_after(statement: str, names: tuple[str, ...]) -> list[str]:
    """Which of ``names`` a fresh interpreter has imported after running ``statement``."""
    probe = (
        f"import sys, json\n{statement}\n"
        f"print(json.dumps([n for n in {list(names)!r} if n in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def test_listing_the_commands_loads_nothing_heavy() -> None:
    assert loaded_after("import confluence_rag.cli.main", HEAVY) == []


@pytest.mark.parametrize("module", LIGHT_COMMANDS)
def test_a_command_module_imports_the_services_only_when_it_runs(module: str) -> None:
    statement = f"import confluence_rag.cli.{module}"
    assert loaded_after(statement, (*HEAVY, "confluence_rag.services")) == []
