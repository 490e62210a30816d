"""Schemathesis against the app's own OpenAPI: every operation, generated requests (valid and
invalid), and no answer is a 5xx.

The app runs for real (``create_app`` under uvicorn on 127.0.0.1, SQLite in tmp) with a small
crawled emulator space, so lookups can meet real rows; everything is offline: embeddings come
from the fake OpenAI-compatible server and ``allowed_sites`` limits outbound fetches to
127.0.0.1 (a generated ``confluence_url`` is refused before any DNS lookup, or meets a closed
local port). ``tests/api`` checks documented shapes one by one; this looks for the requests
nobody thought of.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.generation.case import Case
from schemathesis.schemas import APIOperation, BaseSchema

from confluence_rag.api.app import create_app
from confluence_rag.emulator import EmulatorConfig, EmulatorServer
from confluence_rag.settings import Settings
from tests.api.conftest import ApiServer, source_body
from tests.ingest.fake_embeddings import FakeEmbeddingServer

EXAMPLES = 40


@pytest.fixture(scope="module")
def live_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("api-fuzz")
    with (
        pytest.MonkeyPatch.context() as patch,
        FakeEmbeddingServer(dimension=32) as embeddings,
        EmulatorServer(EmulatorConfig(flavour="cloud", pages=8, extra_spaces={})) as emulator,
    ):
        # The module outlives the per-test isolation: isolate the environment here as well.
        for name in list(os.environ):
            if name.startswith("CONFLUENCE_RAG_"):
                patch.delenv(name)
        for name, value in embeddings.settings_env().items():
            patch.setenv(name, value)
        patch.setenv("CONFLUENCE_RAG_ALLOWED_SITES", "127.0.0.1")
        patch.chdir(root)
        server = ApiServer(create_app(Settings(data_dir=root / "data"))).start()
        try:
            with httpx.Client(base_url=server.url, timeout=30) as client:
                added = client.post(
                    "/api/confluence/sources",
                    json=source_body(emulator),
                )
                assert added.status_code == 201, added.text
                deadline = time.monotonic() + 180  # generous: the machine may be busy
                progress = f"/api/progress/{added.json()['progress_id']}"
                while client.get(progress).json()["status"] != "completed":
                    assert time.monotonic() < deadline, client.get(progress).text
                    time.sleep(0.1)
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="module")
def api_schema(live_api: str) -> BaseSchema:
    return schemathesis.openapi.from_url(f"{live_api}/openapi.json")


def operations(api_schema: BaseSchema) -> list[APIOperation]:
    return [result.ok() for result in api_schema.get_all_operations()]


def test_the_schema_lists_every_api_route(api_schema: BaseSchema) -> None:
    """Fuzzing "all operations" means nothing if routes hide from the schema."""
    listed = {(op.method.upper(), op.path) for op in operations(api_schema)}
    for expected in [
        ("POST", "/api/confluence/sources"),
        ("GET", "/api/confluence/sources"),
        ("GET", "/api/confluence/sources/{source_id}"),
        ("DELETE", "/api/confluence/sources/{source_id}"),
        ("POST", "/api/confluence/sources/{source_id}/sync"),
        ("GET", "/api/progress/{progress_id}"),
        ("POST", "/api/progress/{progress_id}/cancel"),
        ("POST", "/api/search"),
        ("POST", "/api/search/code"),
        ("GET", "/api/pages/{page_id}"),
        ("GET", "/health"),
    ]:
        assert expected in listed, sorted(listed)


def fuzzer(
    operation: APIOperation,
    mode: GenerationMode,
    base_url: str,
    calls: dict[str, int],
    label: str,
) -> Callable[[], None]:
    """A hypothesis test for one operation: generated requests (valid ones, or ones that break
    the schema on purpose), each checked for a 5xx."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def fuzz(case: Case) -> None:
        calls[label] += 1
        case.call_and_validate(base_url=base_url, checks=[not_a_server_error], timeout=30)

    return fuzz  # type: ignore[no-any-return]


@pytest.mark.slow
def test_no_operation_answers_5xx(api_schema: BaseSchema, live_api: str) -> None:
    # One hypothesis run per operation, inside one test: schemathesis' own pytest plugin
    # (``from_fixture``) does not work with this pytest version.
    failures: list[str] = []
    calls: dict[str, int] = {}
    for operation in operations(api_schema):
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            label = f"{operation.method.upper()} {operation.path} ({mode.value})"
            calls[label] = 0
            try:
                fuzzer(operation, mode, live_api, calls, label)()
            except Unsatisfiable:
                # Negative mode found nothing to break (no parameters, or path strings only).
                assert mode is GenerationMode.NEGATIVE, label
            # Collect every failure, then report them all (schemathesis raises its findings as
            # a FailureGroup, a BaseExceptionGroup, not an Exception).
            except (Exception, BaseExceptionGroup) as error:
                failures.append(f"{label}: {error}")
    assert not failures, "\n\n".join(failures)
    # Every operation got requests (negative mode has nothing to break without parameters).
    positive = {label: n for label, n in calls.items() if label.endswith("(positive)")}
    assert len(positive) == len(operations(api_schema)) and all(positive.values()), calls
