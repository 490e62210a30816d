"""Embeddings from any OpenAI-compatible ``POST {base_url}/embeddings`` (OpenAI, Ollama, vLLM).

Batches of ``embed_batch_size`` texts, up to ``openai_max_concurrency`` in flight. 429 and 5xx
answers (and connection errors, timeouts) are retried up to ``max_retries`` times, waiting what
``Retry-After`` says (seconds or an HTTP date, clamped to ``retry_after_max_seconds``) or else an
exponential backoff with jitter; then ``EmbeddingServiceError``. Other 4xx (bad request, bad key)
fail at once: retrying cannot fix them. The API key travels only in the Authorization header and
is never logged or put in an error message.

``dimension``: ``openai_dimensions`` when set (sent as ``dimensions``), else the known size of
OpenAI's own models, else learned from the first response; reading it before that raises
``EmbeddingError`` naming the setting. ``count_tokens`` uses the MiniLM word-piece tokenizer as an
offline stand-in (the remote model's own tokenizer cannot be loaded offline); chunks are sized by
``chunk_max_tokens`` anyway, far below these models' limits.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np

from confluence_rag.errors import EmbeddingError, EmbeddingServiceError
from confluence_rag.index.embedders import BaseEmbedder
from confluence_rag.index.local_embedder import load_wordpiece_tokenizer, minilm_model_dir

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from confluence_rag.settings import Settings

logger = logging.getLogger(__name__)

# OpenAI's own models: (default dimension, max input tokens).
_KNOWN_MODELS = {
    "text-embedding-3-small": (1536, 8191),
    "text-embedding-3-large": (3072, 8191),
    "text-embedding-ada-002": (1536, 8191),
}
# Timeouts, rate limits and server trouble may pass; any other 4xx will not.
_RETRYABLE_4XX = frozenset({408, 429})
_ERROR_TEXT_LIMIT = 300
# Texts per request unless configured: fewer, larger requests spend less of a rate limit.
DEFAULT_BATCH = 64


class OpenAIEmbedder(BaseEmbedder):
    """Client of an OpenAI-compatible embeddings endpoint."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        backoff_base_seconds: float = 0.5,
    ) -> None:
        super().__init__(batch_size=settings.embed_batch_size or DEFAULT_BATCH)
        self.concurrency = settings.openai_max_concurrency
        self._model = settings.openai_model
        self._url = settings.openai_base_url.rstrip("/") + "/embeddings"
        self._api_key = settings.openai_api_key
        self._requested_dimensions = settings.openai_dimensions
        self._chunk_max_tokens = settings.chunk_max_tokens
        self._timeout = settings.http_timeout_seconds
        self._max_retries = settings.max_retries
        self._retry_after_max = settings.retry_after_max_seconds
        self._backoff_base = backoff_base_seconds
        self._transport = transport
        self._learned_dimension: int | None = None
        self._tokenizer: Tokenizer | None = None
        # An AsyncClient's connections belong to the event loop that opened them.
        self._client: tuple[asyncio.AbstractEventLoop, httpx.AsyncClient] | None = None

    @property
    def model_id(self) -> str:
        return f"openai:{self._model}"

    @property
    def dimension(self) -> int:
        if self._requested_dimensions is not None:
            return self._requested_dimensions
        if self._learned_dimension is not None:
            return self._learned_dimension
        if self._model in _KNOWN_MODELS:
            return _KNOWN_MODELS[self._model][0]
        raise EmbeddingError(
            f"the dimension of {self._model!r} is not known before its first response: "
            "set CONFLUENCE_RAG_OPENAI_DIMENSIONS or embed something first"
        )

    @property
    def max_tokens(self) -> int:
        """OpenAI's limit for its models; for others, unknown, so the configured chunk max."""
        if self._model in _KNOWN_MODELS:
            return _KNOWN_MODELS[self._model][1]
        return self._chunk_max_tokens

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            self._tokenizer = load_wordpiece_tokenizer(minilm_model_dir())
        return len(self._tokenizer.encode(text).ids)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        payload: dict[str, Any] = {"model": self._model, "input": texts}
        if self._requested_dimensions is not None:
            payload["dimensions"] = self._requested_dimensions
        body = await self._post(payload)
        vectors = self._parse(body, len(texts))
        self._check_dimension(vectors.shape[1])
        return vectors

    async def _post(self, payload: dict[str, Any]) -> Any:
        client = self._get_client()
        last_failure = ""
        attempts = self._max_retries + 1
        for attempt in range(attempts):
            delay: float | None = None
            try:
                response = await client.post(self._url, json=payload)
            except httpx.TransportError as exc:  # connect errors, timeouts, dropped connections
                last_failure = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        return response.json()
                    except ValueError as exc:
                        raise EmbeddingServiceError(
                            f"{self._url} answered 200 with a body that is not JSON"
                        ) from exc
                message = self._redact(_error_message(response))
                if not _retryable(response.status_code):
                    raise EmbeddingServiceError(
                        f"{self._url} refused the request ({response.status_code}): {message}",
                        details={"status": response.status_code},
                    )
                last_failure = f"{response.status_code}: {message}"
                delay = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt + 1 == attempts:
                break
            if delay is None:
                delay = self._backoff(attempt)
            delay = min(max(delay, 0.0), self._retry_after_max)
            logger.warning(
                "embedding request to %s failed (%s); retry %d/%d in %.2fs",
                self._url,
                last_failure,
                attempt + 1,
                self._max_retries,
                delay,
            )
            await asyncio.sleep(delay)
        raise EmbeddingServiceError(
            f"{self._url} kept failing after {attempts} attempts; last: {last_failure}",
            details={"attempts": attempts},
        )

    def _redact(self, message: str) -> str:
        """Some servers echo the key they were sent in their error text."""
        if self._api_key is not None and self._api_key.get_secret_value():
            return message.replace(self._api_key.get_secret_value(), "***")
        return message

    def _backoff(self, attempt: int) -> float:
        """Exponential with jitter, so concurrent batches do not retry in lockstep."""
        ceiling = min(self._retry_after_max, self._backoff_base * 2**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _parse(self, body: Any, expected: int) -> np.ndarray:
        """Vectors in input order: the API may answer in any order and says so in ``index``."""
        items = body.get("data") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != expected:
            got = len(items) if isinstance(items, list) else "no"
            raise EmbeddingServiceError(
                f"{self._url} returned {got} embeddings for {expected} texts"
            )
        rows: list[Any] = [None] * expected
        for position, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
                raise EmbeddingServiceError(f"{self._url} returned an item without an embedding")
            index = item.get("index", position)
            if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
                raise EmbeddingServiceError(f"{self._url} returned a bad or repeated index")
            rows[index] = item["embedding"]
        try:
            vectors = np.array(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:  # ragged rows or non-numbers
            raise EmbeddingServiceError(
                f"{self._url} returned embeddings of uneven length or non-numeric values"
            ) from exc
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise EmbeddingServiceError(f"{self._url} returned malformed embeddings")
        return vectors

    def _check_dimension(self, dimension: int) -> None:
        expected = self._requested_dimensions or self._learned_dimension
        if expected is None and self._model in _KNOWN_MODELS:
            expected = _KNOWN_MODELS[self._model][0]
        if expected is not None and dimension != expected:
            raise EmbeddingServiceError(
                f"{self._model!r} returned {dimension}-dimensional vectors, expected {expected}"
            )
        self._learned_dimension = dimension

    def _get_client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client[0] is not loop:
            headers = {"Accept": "application/json"}
            if self._api_key is not None:
                headers["Authorization"] = f"Bearer {self._api_key.get_secret_value()}"
            client = httpx.AsyncClient(
                headers=headers,
                timeout=self._timeout,
                transport=self._transport,
                follow_redirects=False,
            )
            self._client = (loop, client)
        return self._client[1]

    def close(self) -> None:
        """Forget the connection pool; prefer ``aclose`` inside an event loop."""
        self._client = None

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None and client[0] is asyncio.get_running_loop():
            await client[1].aclose()


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRYABLE_4XX


def _retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date; None if absent or
    unreadable (the caller then backs off on its own)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation (OpenAI: ``{"error": {"message"}}``), shortened."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"][:_ERROR_TEXT_LIMIT]
        if isinstance(error, str):
            return error[:_ERROR_TEXT_LIMIT]
    text = response.text.strip()
    return text[:_ERROR_TEXT_LIMIT] or response.reason_phrase
