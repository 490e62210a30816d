"""Input limits: oversized bodies, long queries, out-of-range limits and pagination, malformed
space keys and labels (CQL-injection strings among them) are each a 4xx in the standard error
shape on the real API, a tool error on MCP, and never reach Confluence unquoted."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from confluence_rag.confluence import cql
from confluence_rag.confluence.client import ConfluenceClient, SiteAuth
from confluence_rag.emulator import DEMO_PAT, EmulatorServer
from confluence_rag.errors import InvalidInput
from confluence_rag.ingest.sources import NewSource
from confluence_rag.mcp.server import create_mcp_server
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from mcp import Client
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.reliability.security_app import app_settings, assert_error_shape, running_app

Factory = Callable[..., EmulatorServer]
MANY_LABELS = [f"l{n}" for n in range(21)]
INJECTIONS = ['DEV" OR space="HR', "DEV OR space=HR", "DEV)", 'x" OR label="y', "a\\", "~"]


@pytest.fixture
def embeddings() -> Iterator[FakeEmbeddingServer]:
    with FakeEmbeddingServer(dimension=32) as server:
        yield server


@pytest.fixture
def api(
    isolated_env: Path, embeddings: FakeEmbeddingServer, sqlite_template: Path
) -> Iterator[httpx.Client]:
    with running_app(app_settings(isolated_env, embeddings, sqlite_template)) as client:
        yield client


def search(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/api/search", json={"query": "deploy", **body})


# --- the HTTP API -------------------------------------------------------------------------------
def test_body_size_is_capped(api: httpx.Client) -> None:
    big = {"query": "x", "labels": ["a" * 1000] * 300}
    assert_error_shape(api.post("/api/search", json=big), 413, "request_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the cap applies while streaming
        yield b'{"query": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    streamed = api.post(
        "/api/search", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error_shape(streamed, 413, "request_too_large")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "q" * 1001}, "query"),
        ({"query": ""}, "query"),
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"limit": -5}, "limit"),
        ({"limit": "all"}, "limit"),
        ({"spaces": [f"S{n}" for n in range(51)]}, "spaces"),
        ({"labels": ["a"] * 51}, "labels"),
        ({"mode": "everything"}, "mode"),
        ({"page_types": ["attachment"]}, "page_types"),
        ({"source_id": "s" * 513}, "source_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_search_request_limits(api: httpx.Client, body: dict[str, Any], field: str) -> None:
    response = search(api, **body)
    assert_error_shape(response, 400, "invalid_request")
    fields = [e["field"] for e in response.json()["error"]["details"]["errors"]]
    assert any(field in name for name in fields), fields


@pytest.mark.parametrize("value", INJECTIONS)
def test_injection_strings_in_filters_are_refused(api: httpx.Client, value: str) -> None:
    for name in ("spaces", "labels"):
        if name == "labels" and value == "~":
            continue  # "~" alone is an odd label but harmless; as a space key it is invalid
        response = search(api, **{name: [value]})
        assert_error_shape(response, 400, "invalid_input")
        assert response.json()["error"]["details"]["field"] == name
        code = api.post("/api/search/code", json={"query": "deploy", name: [value]})
        assert_error_shape(code, 400, "invalid_input")


def test_valid_filters_still_search(api: httpx.Client) -> None:
    response = search(api, spaces=["DEV", "~jdoe", "~557058:1c2d-33"], labels=["how-to", "v1.2"])
    assert response.status_code == 200, response.text
    assert response.json()["count"] == 0  # nothing indexed: an empty answer, not an error


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"space_key": 'DEV" OR space="HR'}, "space_keys"),
        ({"space_key": None, "space_keys": ["DEV", "HR)"]}, "space_keys"),
        ({"space_key": None, "space_keys": [f"S{n}" for n in range(50)] + ["X"]}, "space_keys"),
        ({"tags": ['a" OR 1=1']}, "tags"),
        ({"confluence_url": "http://x/" + "a" * 2048}, "confluence_url"),
        ({"max_pages": 0}, "max_pages"),
        ({"sync_frequency_hours": -1}, "sync_frequency_hours"),
    ],
)
def test_add_source_limits(
    api: httpx.Client, dc_emulator: EmulatorServer, changes: dict[str, Any], field: str
) -> None:
    body = {
        "confluence_url": dc_emulator.site_url,
        "api_token": DEMO_PAT,
        "space_key": "DEMO",
        "flavour": "datacenter",
        "start_crawl": False,
    }
    body.update(changes)
    response = api.post("/api/confluence/sources", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] in ("invalid_input", "invalid_request"), error
    assert field in str(error["details"]), error
    assert api.get("/api/confluence/sources").json()["count"] == 0
    assert dc_emulator.state.request_count("/rest/api/space") == 0  # refused before any contact


def test_path_parameters_are_bounded(api: httpx.Client) -> None:
    assert_error_shape(api.get("/api/pages/" + "9" * 3000), 400)
    assert_error_shape(api.get("/api/pages/not-a-page-id"), 400)
    assert_error_shape(api.get("/api/progress/" + "j" * 3000), 404)


def test_the_web_search_caps_the_query(api: httpx.Client) -> None:
    response = api.get("/search", params={"q": "q" * 1001})
    assert 400 <= response.status_code < 500
    page = api.get("/search", params={"q": "deploy", "space": 'DEV" OR space="HR'})
    assert page.status_code == 400 and "not a valid space filter" in page.text


# --- CQL: injection strings are quoted or refused before they reach Confluence ------------------
@pytest.mark.parametrize("value", ['DEV" OR space="HR', "a\\", 'x"y'])
def test_cql_values_are_quoted(value: str) -> None:
    quoted = cql.quote(value)
    assert quoted.startswith('"') and quoted.endswith('"')
    inner = quoted[1:-1]
    # every quote inside is escaped, so the literal cannot end early
    assert all(inner[i - 1] == "\\" for i, ch in enumerate(inner) if ch == '"')
    with pytest.raises(InvalidInput):
        cql.validate_space_key(value)
    with pytest.raises(InvalidInput, match="control characters"):
        cql.quote(value + "\n")


def test_an_injected_label_matches_nothing_at_the_emulator(dc_emulator: EmulatorServer) -> None:
    settings = Settings()

    async def pages(labels: list[str]) -> list[str]:
        async with ConfluenceClient(
            dc_emulator.site_url, SiteAuth.datacenter(DEMO_PAT), settings=settings
        ) as client:
            found = client.iter_pages("DEMO", include_body=False, labels=labels)
            return [page.id async for page in found]

    everything = asyncio.run(pages([]))
    assert everything
    assert asyncio.run(pages(['nope" OR space="DEMO'])) == []  # quoted: one odd literal label


# --- MCP: the same limits are tool errors -------------------------------------------------------
def test_mcp_tools_refuse_out_of_bounds_input(
    emulator_factory: Factory,
    embeddings: FakeEmbeddingServer,
    isolated_env: Path,
    sqlite_template: Path,
) -> None:
    server = emulator_factory("datacenter", pages=5)
    settings = app_settings(isolated_env, embeddings, sqlite_template)

    async def main() -> list[str]:
        async with build_services(settings) as services:
            services.jobs.start()
            source, job = await services.sources.add(
                NewSource(
                    confluence_url=server.site_url,
                    api_token=DEMO_PAT,
                    space_key="DEMO",
                    flavour="datacenter",
                )
            )
            assert job is not None
            assert (await services.jobs.wait(job.id, timeout=180)).status == "completed"
            refused: list[str] = []
            async with Client(create_mcp_server(services)) as client:
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("rag_search_knowledge_base", {"query": "q" * 5000}),
                    ("rag_search_knowledge_base", {"query": "   "}),
                    ("rag_search_knowledge_base", {"query": "x", "match_count": 51}),
                    ("rag_search_knowledge_base", {"query": "x", "match_count": 0}),
                    ("rag_search_knowledge_base", {"query": "x", "space": 'DEMO" OR space="HR'}),
                    ("rag_search_knowledge_base", {"query": "x", "labels": ['a" OR label="b']}),
                    ("rag_search_knowledge_base", {"query": "x", "labels": MANY_LABELS}),
                    ("rag_search_code_examples", {"query": "x", "match_count": 1000}),
                    ("rag_search_code_examples", {"query": "x", "language": "p" * 65}),
                    ("rag_list_pages_for_source", {"source_id": source.id, "limit": 201}),
                    ("rag_list_pages_for_source", {"source_id": source.id, "offset": -1}),
                    ("rag_list_pages_for_source", {"source_id": source.id, "space": "D)"}),
                    ("rag_read_full_page", {"page_id": "x", "max_chars": 10**9}),
                ]
                for name, arguments in calls:
                    result = await client.call_tool(name, arguments)
                    text = " ".join(getattr(c, "text", "") for c in result.content)
                    assert result.is_error, f"{name}({arguments}) succeeded: {text[:200]}"
                    refused.append(text)
                fine = await client.call_tool(
                    "rag_search_knowledge_base", {"query": "page", "match_count": 3}
                )
                assert not fine.is_error
            return refused

    refused = asyncio.run(main())
    assert len(refused) == 13 and all(text.strip() for text in refused)
