"""Access: with ``CONFLUENCE_RAG_API_TOKEN`` set, every route of the real app (enumerated from
``app.routes``, so a route added later is covered without touching this file) refuses a request
without the token: 401 in the standard error shape for /api, /mcp and the OpenAPI document, a
redirect to the token form for pages. Only /health, /login, /static and the API description
(/openapi.json, /docs, /redoc: public code, no data) are public. ``serve``
refuses a non-loopback address without a token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from pydantic import SecretStr
from typer.testing import CliRunner

from confluence_rag.api.access import is_public, token_equals
from confluence_rag.api.app import create_app
from confluence_rag.api.deps import UI_TOKEN_COOKIE
from confluence_rag.cli.main import app as cli_app
from confluence_rag.cli.serve_cmd import check_exposure
from confluence_rag.errors import ConfigurationError
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.reliability.security_app import API_TOKEN, app_settings, assert_error_shape, csrf_from

ALL_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WRONG_CREDENTIALS: list[dict[str, str]] = [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {API_TOKEN}"},
    {"Authorization": f"Bearer {API_TOKEN}x"},
]


def walk_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) for every route of an app, nested routers and mounts included."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:  # FastAPI's included router: its routes carry their full path
            context = getattr(route, "include_context", None)
            yield from walk_routes(nested.routes, prefix + getattr(context, "prefix", ""))
            continue
        path = prefix + str(route.path)
        if hasattr(route, "app") and not hasattr(route, "endpoint"):  # a Mount (static files)
            yield "GET", path + "/app.css"
            continue
        methods = sorted(getattr(route, "methods", None) or ALL_METHODS)
        for method in methods:
            if method != "HEAD":
                yield method, path


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture
def token_settings(
    isolated_env: Path, sqlite_template: Path
) -> Iterator[tuple[Settings, FakeEmbeddingServer]]:
    with FakeEmbeddingServer(dimension=32) as embeddings:
        yield (
            app_settings(isolated_env, embeddings, sqlite_template, api_token=API_TOKEN),
            embeddings,
        )


@pytest.fixture
def served(token_settings: tuple[Settings, FakeEmbeddingServer]) -> Iterator[tuple[FastAPI, str]]:
    settings, _ = token_settings
    app = create_app(settings)
    # A route added after the app is built, without any check of its own: still closed.
    late = APIRouter(include_in_schema=False)

    def leak() -> dict[str, bool]:
        return {"leak": True}

    late.add_api_route("/api/late-addition", leak, methods=["GET", "POST"])
    late.add_api_route("/late-page", leak, methods=["GET"])
    app.include_router(late)
    server = ApiServer(app).start()
    try:
        yield app, server.url
    finally:
        server.stop()


def test_every_route_refuses_a_request_without_the_token(served: tuple[FastAPI, str]) -> None:
    app, url = served
    routes = sorted(set(walk_routes(app.routes)))
    paths = {path for _, path in routes}
    # the walk really saw the app (a broken walk must not pass by finding nothing)
    for expected in (
        "/api/search",
        "/api/confluence/sources",
        "/mcp",
        "/",
        "/sources/new",
        "/docs",
        "/openapi.json",
        "/health",
        "/login",
        "/api/late-addition",
        "/late-page",
    ):
        assert expected in paths, (expected, sorted(paths))
    checked = 0
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        for method, path in routes:
            target = concrete(path)
            if is_public(target):
                continue
            for headers in (
                {},
                {"Authorization": "Bearer wrong-token"},
                {"Authorization": "Basic x"},
            ):
                response = client.request(method, target, headers=headers, json={})
                where = f"{method} {target} {headers}"
                if target.startswith(("/api/", "/mcp")):
                    assert_error_shape(response, 401, "unauthorized")
                    assert response.headers["www-authenticate"] == "Bearer", where
                else:
                    assert response.status_code == 303, (where, response.status_code)
                    assert response.headers["location"].startswith("/login?next="), where
                assert "leak" not in response.text, where
                checked += 1
    assert checked >= len(WRONG_CREDENTIALS) * 20


def test_public_paths_answer_without_the_token(served: tuple[FastAPI, str]) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30) as client:
        assert client.get("/health").json()["status"] == "ok"
        login = client.get("/login?next=/search")
        assert login.status_code == 200 and 'name="token"' in login.text
        assert client.get("/static/app.css").status_code == 200
        assert "/api/search" in client.get("/openapi.json").json()["paths"]


def test_the_token_opens_the_api_and_the_cookie_only_reads(served: tuple[FastAPI, str]) -> None:
    _, url = served
    bearer = {"Authorization": f"Bearer {API_TOKEN}"}
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        assert client.get("/api/confluence/sources", headers=bearer).status_code == 200
        assert client.get("/api/late-addition", headers=bearer).json() == {"leak": True}
        # /mcp with the token reaches the MCP transport (which wants its own protocol)
        assert client.get("/mcp", headers=bearer).status_code != 401
        client.cookies.set(UI_TOKEN_COOKIE, API_TOKEN)
        assert client.get("/api/confluence/sources").status_code == 200  # GET: cookie is enough
        assert client.get("/").status_code == 200
        # a cookie is sent by the browser on its own: it never authorises a JSON state change
        refused = client.post("/api/search", json={"query": "x"})
        assert_error_shape(refused, 401, "unauthorized")
        assert client.post("/mcp", json={}).status_code == 401


def test_the_ui_without_the_cookie_goes_to_the_token_form_and_back(
    served: tuple[FastAPI, str],
) -> None:
    _, url = served
    with httpx.Client(base_url=url, timeout=30, follow_redirects=False) as client:
        first = client.get("/search?q=deploy")
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=%2Fsearch%3Fq%3Ddeploy"
        form = client.get(first.headers["location"])
        wrong = client.post(
            "/login",
            data={"csrf_token": csrf_from(form.text), "token": "nope", "next": "/search?q=deploy"},
        )
        assert wrong.status_code == 401 and UI_TOKEN_COOKIE not in wrong.cookies
        right = client.post(
            "/login",
            data={
                "csrf_token": csrf_from(form.text),
                "token": API_TOKEN,
                "next": "/search?q=deploy",
            },
        )
        assert right.status_code == 303 and right.headers["location"] == "/search?q=deploy"
        cookie = right.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
        assert client.get("/search?q=deploy").status_code == 200


def test_token_comparison() -> None:
    secret = SecretStr(API_TOKEN)
    assert token_equals(API_TOKEN, secret) and token_equals(f" {API_TOKEN} ", secret)
    assert not token_equals(API_TOKEN[:-1], secret)
    assert not token_equals(API_TOKEN + "x", secret)
    assert not token_equals("", secret)


# --- serve ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com"])
def test_serve_refuses_a_non_loopback_address_without_a_token(
    host: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--host", host], catch_exceptions=False)
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert "refusing to listen on" in output and "CONFLUENCE_RAG_API_TOKEN" in output
    assert "Traceback" not in output


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_needs_no_token(host: str, settings: Settings) -> None:
    check_exposure(settings, host)


def test_with_a_token_any_address_is_allowed(settings: Settings) -> None:
    with_token = settings.model_copy(update={"api_token": SecretStr(API_TOKEN)})
    check_exposure(with_token, "0.0.0.0")
    with pytest.raises(ConfigurationError):
        check_exposure(settings, "0.0.0.0")
