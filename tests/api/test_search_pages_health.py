"""Search, code search, full pages and /health over HTTP, on a crawled emulator space."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from confluence_rag import __version__
from tests.api.conftest import source_body, wait_for_job
from tests.api.test_errors import assert_error
from tests.plugins.emulator import EmulatorFactory


@pytest.fixture
def crawled(client: httpx.Client, emulator_factory: EmulatorFactory) -> dict[str, Any]:
    """A crawled 15-page space (+ OPS), with a page the test can find by its unique marker."""
    server = emulator_factory("cloud", pages=15, extra_spaces={"OPS": 4})
    body = source_body(server, space_key=None, space_keys=["DEMO", "OPS"])
    created = client.post("/api/confluence/sources", json=body).json()
    assert wait_for_job(client, created["progress_id"])["status"] == "completed"
    source_id = created["source_id"]
    for page_id, marker in sorted(server.state.markers("DEMO").items()):
        response = client.get(f"/api/pages/{source_id}:{page_id}")
        if response.status_code == 200:
            return {"source_id": source_id, "page": response.json(), "marker": marker}
    raise AssertionError("no page with a marker was indexed")


def test_health_reports_database_model_and_version(client: httpx.Client) -> None:
    health = client.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["version"] == __version__
    assert body["backend"] == "sqlite"
    assert body["model_loaded"] is False  # nothing needed the model yet
    assert body["index_model"] is None


def test_search_finds_the_page_and_the_page_reads_in_full(
    client: httpx.Client, crawled: dict[str, Any]
) -> None:
    page, marker = crawled["page"], crawled["marker"]
    assert marker in page["markdown"]
    assert page["page_id"] == f"{crawled['source_id']}:{page['confluence_page_id']}"
    assert page["source_id"] == crawled["source_id"]
    assert page["space_key"] == "DEMO" and page["is_deleted"] is False
    assert page["confluence_version"] >= 1 and page["chunk_count"] >= 1
    assert page["url"].startswith("http") and page["breadcrumb"]

    response = client.post("/api/search", json={"query": marker, "retriever": "keyword"})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["retriever"] == "keyword" and result["mode"] == "pages"  # the default
    assert result["count"] == len(result["results"]) >= 1
    top = result["results"][0]
    assert top["page_id"] == page["page_id"]
    assert top["title"] == page["title"] and top["url"] == page["url"]
    assert marker in top["text"] and "<mark>" in top["snippet_html"]
    assert top["match_type"] == "keyword"

    # The test vectors are hashes, not meaning: hybrid must still surface the keyword match.
    hybrid = client.post("/api/search", json={"query": marker, "limit": 20}).json()
    assert page["page_id"] in [hit["page_id"] for hit in hybrid["results"]]

    semantic = client.post("/api/search", json={"query": page["title"], "retriever": "semantic"})
    assert semantic.status_code == 200 and semantic.json()["count"] >= 1
    health = client.get("/health").json()
    assert health["model_loaded"] is True
    assert health["index_model"] and health["index_dimension"] == 32


def test_search_filters_modes_and_limits(client: httpx.Client, crawled: dict[str, Any]) -> None:
    query = {"query": "deployment monitoring runbook", "limit": 3}
    assert len(client.post("/api/search", json=query).json()["results"]) <= 3

    ops = client.post("/api/search", json={**query, "limit": 50, "spaces": ["OPS"]}).json()
    assert ops["count"] >= 1
    assert {hit["space_key"] for hit in ops["results"]} == {"OPS"}

    # A source or space that is not indexed is named as such, never an empty answer.
    other = client.post("/api/search", json={**query, "source_id": "elsewhere:X"})
    error = assert_error(other, 400, "invalid_input")
    assert "unknown source_id 'elsewhere:X'" in error["message"]
    assert crawled["source_id"] in error["message"]
    nowhere = client.post("/api/search/code", json={**query, "spaces": ["NOPE"]})
    error = assert_error(nowhere, 400, "invalid_input")
    assert "'NOPE' is not in any indexed source" in error["message"] and "OPS" in error["message"]
    # The same, written into the query as operators.
    operator = client.post("/api/search", json={"query": "deployment space:nope"})
    error = assert_error(operator, 400, "invalid_input")
    assert "'NOPE' is not in any indexed source" in error["message"]
    bad_type = client.post("/api/search", json={"query": "deployment type:wiki"})
    assert (
        "type: must be page or blogpost" in assert_error(bad_type, 400, "invalid_input")["message"]
    )
    in_ops = client.post("/api/search", json={"query": "deployment monitoring space:ops"})
    assert {hit["space_key"] for hit in in_ops.json()["results"]} == {"OPS"}
    # Filters are normalised as every surface does: a lower-case key names the same space.
    lower = client.post("/api/search", json={**query, "limit": 50, "spaces": ["ops"]}).json()
    assert lower["count"] == ops["count"]

    pages = client.post("/api/search", json={**query, "limit": 50, "mode": "pages"}).json()
    ids = [hit["page_id"] for hit in pages["results"]]
    assert len(ids) == len(set(ids)), "pages mode returned a page twice"


def test_code_search(client: httpx.Client, crawled: dict[str, Any]) -> None:
    response = client.post("/api/search/code", json={"query": crawled["marker"]})
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["count"] >= 1
    top = result["results"][0]
    assert crawled["marker"] in top["code"]
    assert top["page_id"] == crawled["page"]["page_id"]
    assert top["language"] and top["line_count"] >= 1
    unknown = client.post("/api/search/code", json={"query": "x", "language": "cobol-99"})
    assert unknown.status_code == 200 and unknown.json()["count"] == 0


def test_a_deleted_source_leaves_no_search_results(
    client: httpx.Client, crawled: dict[str, Any]
) -> None:
    client.delete(f"/api/confluence/sources/{crawled['source_id']}")
    result = client.post("/api/search", json={"query": crawled["marker"]}).json()
    assert result["count"] == 0
    assert_error(client.get(f"/api/pages/{crawled['page']['page_id']}"), 404, "page_not_found")
