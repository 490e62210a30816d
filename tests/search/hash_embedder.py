"""A tiny deterministic embedder for search tests: words hashed into a 256-dim bag of words.

A stand-in for the external model, used only where a test needs vector ranking it can predict
(texts sharing words are close). The real model is exercised in the end-to-end test.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

DIM = 256


class HashEmbedder:
    def __init__(self, dimension: int = DIM, model_id: str = "test-hash-256") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.queries: list[str] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_tokens(self) -> int:
        return 256

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def vector(self, text: str) -> np.ndarray:
        v = np.zeros(self._dimension, dtype=np.float32)
        for word in re.findall(r"\w+", text.lower()):
            bucket = int(hashlib.sha1(word.encode()).hexdigest(), 16) % self._dimension
            v[bucket] += 1.0
        norm = np.linalg.norm(v)
        if norm == 0:
            v[0] = 1.0
            return v
        return v / norm

    async def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])

    async def embed_query(self, text: str) -> np.ndarray:
        self.queries.append(text)
        return self.vector(text)

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
