"""Every error the API can give has one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from confluence_rag.api.limits import MAX_BODY_BYTES
from confluence_rag.api.schemas import MAX_LIMIT, MAX_QUERY_CHARS
from confluence_rag.settings import Settings
from tests.api.conftest import AppFactory


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"code", "message", "details"}
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["details"], dict)
    return dict(error)


def test_unknown_route_is_a_404_in_the_standard_shape(client: httpx.Client) -> None:
    error = assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert "/api/nothing-here" in error["message"]


def test_wrong_method_is_a_405_with_allow(client: httpx.Client) -> None:
    response = client.delete("/api/search")
    error = assert_error(response, 405, "method_not_allowed")
    assert "DELETE" in error["message"]
    assert response.headers["allow"] == "POST"
    # Several routes share a path: Allow lists every method of them all.
    response = client.put("/api/confluence/sources/x:DEMO")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, PATCH, DELETE"


def test_validation_error_names_every_bad_field(client: httpx.Client) -> None:
    response = client.post("/api/search", json={"query": "", "limit": 0, "mode": "books"})
    error = assert_error(response, 400, "invalid_request")
    fields = {item["field"] for item in error["details"]["errors"]}
    assert fields == {"body.query", "body.limit", "body.mode"}
    assert error["message"].startswith("body.")


@pytest.mark.parametrize(
    "body",
    [
        {"query": "x" * (MAX_QUERY_CHARS + 1)},
        {"query": "ok", "limit": MAX_LIMIT + 1},
        {"query": "ok", "unknown_option": True},
        {"query": "ok", "spaces": "DEV"},
        {"query": "ok", "updated_after": "yesterday"},
    ],
)
def test_search_input_limits(client: httpx.Client, body: dict[str, Any]) -> None:
    assert_error(client.post("/api/search", json=body), 400, "invalid_request")


def test_malformed_json_is_a_400(client: httpx.Client) -> None:
    response = client.post(
        "/api/search", content=b'{"query": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "invalid_request")


def test_a_body_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    big = {"query": "x", "labels": ["y" * (MAX_BODY_BYTES + 10)]}
    error = assert_error(client.post("/api/search", json=big), 413, "request_too_large")
    assert error["details"] == {"max_bytes": MAX_BODY_BYTES}


def test_a_streamed_body_over_the_limit_is_refused_with_413(client: httpx.Client) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"query": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"z" * 1024
        yield b'"}'

    # No Content-Length: the limit must hold while the body streams in.
    response = client.post(
        "/api/search", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "request_too_large")


def test_our_errors_keep_their_status_and_code(client: httpx.Client) -> None:
    assert_error(client.get("/api/confluence/sources/nope:DEV"), 404, "source_not_found")
    assert_error(client.delete("/api/confluence/sources/nope:DEV"), 404, "source_not_found")
    assert_error(client.post("/api/confluence/sources/nope:DEV/sync"), 404, "source_not_found")
    assert_error(client.get("/api/progress/no-such-job"), 404, "job_not_found")
    assert_error(client.post("/api/progress/no-such-job/cancel"), 404, "job_not_found")
    assert_error(client.get("/api/progress/no-such-job/events"), 404, "job_not_found")
    assert_error(client.get("/api/pages/site:DEMO:12345"), 404, "page_not_found")
    assert_error(client.get("/api/pages/not-a-page-key"), 400, "invalid_input")


def test_an_unhandled_exception_is_a_logged_500_that_leaks_nothing(
    serve_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    def add_broken_route(app: FastAPI) -> None:
        async def broken() -> None:
            raise RuntimeError("secret-internal-detail /srv/db.sqlite3")

        app.add_api_route("/api/broken", broken)

    client = serve_app(customise=add_broken_route)
    with caplog.at_level(logging.ERROR, logger="confluence_rag.api.errors"):
        response = client.get("/api/broken")
    error = assert_error(response, 500, "internal_error")
    assert error["details"] == {}
    assert "secret-internal-detail" not in response.text
    assert "Traceback" not in response.text and "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.name == "confluence_rag.api.errors"]
    assert logged and logged[0].exc_info is not None
    # The server keeps answering afterwards.
    assert client.get("/health").status_code == 200


def test_api_token_protects_the_api_but_not_health(
    serve_app: AppFactory, api_settings: Settings
) -> None:
    settings = api_settings.model_copy(update={"api_token": SecretStr("s3cret-token")})
    client = serve_app(settings)
    error = assert_error(client.get("/api/confluence/sources"), 401, "unauthorized")
    assert "s3cret-token" not in str(error)
    wrong = client.get("/api/confluence/sources", headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "unauthorized")
    assert wrong.headers["www-authenticate"] == "Bearer"
    ok = client.get("/api/confluence/sources", headers={"Authorization": "Bearer s3cret-token"})
    assert ok.status_code == 200
    assert client.get("/health").status_code == 200
    assert client.get("/openapi.json").status_code == 200
