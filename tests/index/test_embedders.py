"""The embedder base: batching, order, result checks, cancellation; the factory."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from confluence_rag.errors import ConfigurationError, EmbeddingError, InvalidInput
from confluence_rag.index.embedders import BaseEmbedder, Embedder, create_embedder
from confluence_rag.index.local_embedder import LocalEmbedder
from confluence_rag.index.openai_embedder import OpenAIEmbedder
from confluence_rag.settings import Settings


def raw_vector(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)) % 97), 1.0]


class ScriptedEmbedder(BaseEmbedder):
    """A provider for testing the base: vectors are simple functions of the text, and some
    texts misbehave on purpose."""

    def __init__(self, *, batch_size: int, concurrency: int = 1, sort: bool = False) -> None:
        super().__init__(batch_size=batch_size)
        self.concurrency = concurrency
        self.sort_by_length = sort
        self.batches: list[list[str]] = []
        self.cancelled = 0

    model_id = "test:scripted"  # type: ignore[assignment]
    dimension = 3  # type: ignore[assignment]
    max_tokens = 64  # type: ignore[assignment]

    def count_tokens(self, text: str) -> int:
        return len(text.split()) + 2

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.batches.append(texts)
        if "fail" in texts:
            raise EmbeddingError("scripted failure")
        if "slow" in texts:
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if "nan" in texts:
            return np.full((len(texts), 3), np.nan)
        if "zero" in texts:
            return np.zeros((len(texts), 3))
        if "short" in texts:
            return np.ones((len(texts) - 1, 3))
        return np.array([raw_vector(t) for t in texts])


def expected(texts: list[str]) -> np.ndarray:
    raw = np.array([raw_vector(t) for t in texts], dtype=np.float32)
    return raw / np.linalg.norm(raw, axis=1, keepdims=True)


@pytest.mark.parametrize("sort", [False, True])
def test_batches_are_reassembled_in_input_order(sort: bool) -> None:
    embedder = ScriptedEmbedder(batch_size=3, concurrency=2, sort=sort)
    assert isinstance(embedder, Embedder)
    texts = ["a" * n for n in (9, 1, 7, 3, 5, 2, 8)] + ["bb", "c"]
    vectors = asyncio.run(embedder.embed_documents(texts))
    assert vectors.dtype == np.float32 and vectors.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(vectors, expected(texts), rtol=1e-6)
    assert [len(b) for b in embedder.batches] == [3, 3, 3]
    if sort:  # similar lengths share a batch, so a local model pads less
        assert embedder.batches[0] == ["a", "c", "aa"]


def test_query_is_one_normalised_vector() -> None:
    vector = asyncio.run(ScriptedEmbedder(batch_size=8).embed_query("hello"))
    np.testing.assert_allclose(vector, expected(["hello"])[0], rtol=1e-6)


@pytest.mark.parametrize(
    ("text", "message"),
    [("nan", "NaN"), ("zero", "all-zero"), ("short", "shape")],
)
def test_bad_vectors_are_refused(text: str, message: str) -> None:
    with pytest.raises(EmbeddingError, match=message):
        asyncio.run(ScriptedEmbedder(batch_size=8).embed_documents(["ok", text]))


def test_one_string_is_not_a_list_of_texts() -> None:
    with pytest.raises(InvalidInput):
        asyncio.run(ScriptedEmbedder(batch_size=8).embed_documents("abc"))


def test_a_failed_batch_cancels_the_others() -> None:
    embedder = ScriptedEmbedder(batch_size=1, concurrency=3)
    with pytest.raises(EmbeddingError, match="scripted failure"):
        asyncio.run(embedder.embed_documents(["slow", "slow", "fail", "x"]))
    assert embedder.cancelled == 2  # the two slow batches were cancelled, not waited for


def test_batch_size_must_be_positive() -> None:
    with pytest.raises(ConfigurationError):
        ScriptedEmbedder(batch_size=0)


def test_the_factory_picks_by_settings_and_loads_nothing(settings: Settings) -> None:
    assert isinstance(create_embedder(settings), LocalEmbedder)
    openai = create_embedder(Settings(data_dir=settings.data_dir, embedder="openai"))
    assert isinstance(openai, OpenAIEmbedder)
    assert openai.model_id == "openai:text-embedding-3-small" and openai.dimension == 1536
