"""Fixtures for index tests: the real MiniLM tokenizer from the installed model package."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from confluence_rag.index.local_embedder import load_wordpiece_tokenizer, minilm_model_dir


@pytest.fixture(scope="session")
def count_tokens() -> Callable[[str], int]:
    """The model's own word-piece count, special tokens included (what embedders expose)."""
    tokenizer = load_wordpiece_tokenizer(minilm_model_dir())

    def count(text: str) -> int:
        return len(tokenizer.encode(text).ids)

    return count
