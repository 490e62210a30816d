"""The README stays true: every CLI command and every API route is documented there."""

from __future__ import annotations

import re
from pathlib import Path

from confluence_rag.api.app import create_app
from confluence_rag.cli.main import app as cli_app
from confluence_rag.settings import Settings

README = Path(__file__).resolve().parent.parent / "README.md"
HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def api_routes(settings: Settings) -> set[str]:
    """``"METHOD /path"`` of our JSON API (``/api/...`` and ``/health``), from the OpenAPI
    schema (FastAPI nests included routers, so ``app.routes`` does not list them flat)."""
    schema = create_app(settings).openapi()
    return {
        f"{method.upper()} {path}"
        for path, operations in schema["paths"].items()
        if path.startswith("/api/") or path == "/health"
        for method in operations
        if method in HTTP_METHODS
    }


def test_every_cli_command_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    names = [command.name for command in cli_app.registered_commands]
    assert names, "no CLI command registered"
    missing = [name for name in names if f"`confluence-rag {name}" not in text]
    assert not missing, f"README's CLI reference lacks: {missing}"


def test_every_api_route_is_in_the_readme(settings: Settings) -> None:
    text = README.read_text(encoding="utf-8")
    routes = api_routes(settings)
    assert "POST /api/confluence/sources" in routes and "GET /health" in routes
    missing = sorted(route for route in routes if f"`{route}`" not in text)
    assert not missing, f"README's HTTP API reference lacks: {missing}"


def test_the_readme_documents_no_route_that_does_not_exist(settings: Settings) -> None:
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:GET|POST|PUT|PATCH|DELETE) /[^`\s]*)`", text))
    unknown = documented - api_routes(settings)
    assert not unknown, f"README documents routes that do not exist: {unknown}"


def test_every_setting_is_in_the_readme_configuration_table() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(CONFLUENCE_RAG_[A-Z_]+)` \|", table, re.MULTILINE))
    expected = {f"CONFLUENCE_RAG_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected, (
        f"README lacks {sorted(expected - documented)}; documents unknown "
        f"{sorted(documented - expected)}"
    )
