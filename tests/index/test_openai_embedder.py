"""The OpenAI-compatible embedder against a fake server on a real socket."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import numpy as np
import pytest

from confluence_rag.errors import EmbeddingError, EmbeddingServiceError
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.index.openai_embedder import OpenAIEmbedder, _retry_after_seconds
from confluence_rag.settings import Settings
from tests.index.fake_openai import FakeOpenAI, Fault, expected_vector, serve_fake_openai

API_KEY = "sk-test-secret-123"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as server:
        yield server


def make(settings: Settings, fake: FakeOpenAI, **overrides: Any) -> OpenAIEmbedder:
    values: dict[str, Any] = {
        "embedder": "openai",
        "openai_base_url": fake.base_url,
        "openai_api_key": API_KEY,
        "openai_model": "text-embedding-3-small",
        "openai_dimensions": 8,
        "embed_batch_size": 4,
        "max_retries": 3,
        "retry_after_max_seconds": 5.0,
    }
    values.update(overrides)
    embedder = create_embedder(Settings(data_dir=settings.data_dir, **values))
    assert isinstance(embedder, OpenAIEmbedder)
    embedder._backoff_base = 0.01  # keep retries fast; the backoff curve itself is not timed
    return embedder


def unit(vector: np.ndarray) -> np.ndarray:
    return vector / np.linalg.norm(vector)


def run(embedder: OpenAIEmbedder, texts: list[str]) -> np.ndarray:
    async def go() -> np.ndarray:
        try:
            return await embedder.embed_documents(texts)
        finally:
            await embedder.aclose()

    return asyncio.run(go())


def test_batches_come_back_in_input_order_and_normalised(
    settings: Settings, fake: FakeOpenAI
) -> None:
    embedder = make(settings, fake)
    assert isinstance(embedder, Embedder)
    texts = [f"text number {i}" for i in range(10)]
    vectors = run(embedder, texts)
    assert vectors.shape == (10, 8) and vectors.dtype == np.float32
    expected = np.stack([unit(expected_vector(t)) for t in texts])
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-6)
    # Batches go out concurrently: they may arrive in any order, results still come back in
    # input order (checked above).
    assert sorted(len(r["input"]) for r in fake.requests) == [2, 4, 4]
    assert sorted(t for r in fake.requests for t in r["input"]) == sorted(texts)
    assert all(
        r["model"] == "text-embedding-3-small" and r["dimensions"] == 8 for r in fake.requests
    )
    assert set(fake.auth_headers) == {f"Bearer {API_KEY}"}


def test_identity_and_query(settings: Settings, fake: FakeOpenAI) -> None:
    embedder = make(settings, fake, openai_dimensions=16)
    assert embedder.model_id == "openai:text-embedding-3-small"
    assert embedder.dimension == 16
    assert embedder.max_tokens == 8191
    assert embedder.count_tokens("hello world") == 4  # [CLS] hello world [SEP]

    async def go() -> np.ndarray:
        try:
            return await embedder.embed_query("where is the runbook")
        finally:
            await embedder.aclose()

    vector = asyncio.run(go())
    assert vector.shape == (16,)
    np.testing.assert_allclose(vector, unit(expected_vector("where is the runbook", 16)), rtol=1e-5)


def test_no_texts_means_no_request(settings: Settings, fake: FakeOpenAI) -> None:
    vectors = run(make(settings, fake), [])
    assert vectors.shape == (0, 8)
    assert fake.requests == []


def test_batches_run_concurrently_up_to_the_limit(settings: Settings, fake: FakeOpenAI) -> None:
    fake.delay_seconds = 0.1
    embedder = make(settings, fake, embed_batch_size=1, openai_max_concurrency=3)
    vectors = run(embedder, [f"t{i}" for i in range(9)])
    assert vectors.shape == (9, 8)
    assert fake.max_in_flight == 3  # three at once, never more (no wall clock: load varies)


def test_rate_limit_is_retried_after_the_time_the_server_asks(
    settings: Settings, fake: FakeOpenAI
) -> None:
    past = format_datetime(datetime.now(UTC) - timedelta(seconds=30), usegmt=True)
    fake.faults = [
        Fault(429, {"Retry-After": "0.2"}),
        Fault(503, {"Retry-After": past}),
        Fault(500),
    ]
    started = time.perf_counter()
    vectors = run(make(settings, fake), ["a", "b"])
    elapsed = time.perf_counter() - started
    assert vectors.shape == (2, 8)
    assert len(fake.requests) == 4
    assert elapsed >= 0.2


def test_a_long_retry_after_is_clamped(settings: Settings, fake: FakeOpenAI) -> None:
    fake.faults = [Fault(429, {"Retry-After": "3600"})]
    started = time.perf_counter()
    run(make(settings, fake, retry_after_max_seconds=0.1), ["a"])
    assert time.perf_counter() - started < 60  # not the hour asked for, however busy the machine


def test_persistent_server_errors_end_in_a_clear_error(
    settings: Settings, fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    fake.faults = [Fault(503, {"Retry-After": "0"}, {"error": {"message": "overloaded"}})] * 10
    with caplog.at_level(logging.WARNING), pytest.raises(EmbeddingServiceError) as info:
        run(make(settings, fake, max_retries=2), ["a"])
    assert len(fake.requests) == 3
    assert "after 3 attempts" in info.value.message and "503: overloaded" in info.value.message
    assert "retry 1/2" in caplog.text
    assert API_KEY not in caplog.text


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_not_retried(status: int, settings: Settings, fake: FakeOpenAI) -> None:
    # Some servers echo the key they were given; it must not reach the error message.
    fake.faults = [Fault(status, body={"error": {"message": f"bad key {API_KEY} or input"}})]
    with pytest.raises(EmbeddingServiceError) as info:
        run(make(settings, fake), ["a"])
    assert len(fake.requests) == 1
    assert f"({status})" in info.value.message and "or input" in info.value.message
    assert API_KEY not in info.value.message
    assert info.value.details == {"status": status}


def test_an_unreachable_server_is_retried_then_reported(settings: Settings) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    unreachable = FakeOpenAI(base_url=f"http://127.0.0.1:{port}/v1")
    with pytest.raises(EmbeddingServiceError) as info:
        run(make(settings, unreachable, max_retries=1), ["a"])
    assert "after 2 attempts" in info.value.message and "ConnectError" in info.value.message


def test_the_dimension_is_learned_from_the_first_answer(
    settings: Settings, fake: FakeOpenAI
) -> None:
    embedder = make(settings, fake, openai_model="nomic-embed-text", openai_dimensions=None)
    assert embedder.model_id == "openai:nomic-embed-text"
    assert embedder.max_tokens == settings.chunk_max_tokens
    with pytest.raises(EmbeddingError, match="CONFLUENCE_RAG_OPENAI_DIMENSIONS"):
        _ = embedder.dimension
    run(embedder, ["a"])
    assert embedder.dimension == 8
    assert "dimensions" not in fake.requests[0]


def test_a_known_model_answering_another_size_is_an_error(
    settings: Settings, fake: FakeOpenAI
) -> None:
    embedder = make(settings, fake, openai_dimensions=None)  # text-embedding-3-small: 1536
    with pytest.raises(EmbeddingServiceError, match="expected 1536"):
        run(embedder, ["a"])


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"data": []}, "returned 0 embeddings for 2 texts"),
        ({"nothing": 1}, "returned no embeddings"),
        (
            {"data": [{"index": 0, "embedding": [1.0]}, {"index": 0, "embedding": [1.0]}]},
            "bad or repeated index",
        ),
        (
            {"data": [{"index": 0, "embedding": [1.0, 2.0]}, {"index": 1, "embedding": [1.0]}]},
            "uneven length",
        ),
        ({"data": [{"index": 0}, {"index": 1}]}, "without an embedding"),
        (
            {"data": [{"index": 0, "embedding": [0.0, 0.0]}, {"index": 1, "embedding": [1, 0]}]},
            "all-zero vector",
        ),
    ],
)
def test_malformed_answers_are_errors(
    body: Any, message: str, settings: Settings, fake: FakeOpenAI
) -> None:
    fake.override_body = body
    with pytest.raises(EmbeddingError, match=message):
        run(make(settings, fake, openai_model="custom", openai_dimensions=None), ["a", "b"])


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("soon", None),
        (format_datetime(datetime(2000, 1, 1, tzinfo=UTC), usegmt=True), 0.0),
    ],
)
def test_retry_after_values(header: str | None, expected: float | None) -> None:
    assert _retry_after_seconds(header) == expected


def test_retry_after_as_a_future_http_date() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    seconds = _retry_after_seconds(later)
    assert seconds is not None and 100 < seconds <= 120


def test_batch_size_defaults_to_sixty_four_and_follows_the_setting(
    settings: Settings, fake: FakeOpenAI
) -> None:
    assert make(settings, fake, embed_batch_size=None).batch_size == 64
    assert make(settings, fake).batch_size == 4
