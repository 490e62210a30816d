"""Builders for store records in tests: documents, chunks and vectors with sensible defaults."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from confluence_rag.content.models import CodeBlock, Document
from confluence_rag.index.models import Chunk
from confluence_rag.records import SourceRecord

DIM = 8
MODEL = "test-model"
SOURCE = "example.atlassian.net:DEV+OPS"


def source(source_id: str = SOURCE, **fields: Any) -> SourceRecord:
    base: dict[str, Any] = {
        "id": source_id,
        "site_url": "https://example.atlassian.net/wiki",
        "flavour": "cloud",
        "space_keys": ("DEV", "OPS"),
        "space_names": {"DEV": "Development", "OPS": "Operations"},
        "user_email": "me@example.com",
        "tags": ("team",),
    }
    base.update(fields)
    return SourceRecord(**base)


def document(
    page_id: str = "1001",
    *,
    title: str = "Deploy guide",
    space: str = "DEV",
    version: int = 1,
    labels: Sequence[str] = ("ops",),
    page_type: str = "page",
    updated_at: datetime | None = None,
    code: Sequence[tuple[str, str]] = (),
    markdown: str | None = None,
    author: str = "Ada",
) -> Document:
    return Document(
        page_id=page_id,
        space_key=space,
        type=page_type,
        title=title,
        version=version,
        status="current",
        created_at=datetime(2025, 1, 1, tzinfo=UTC),
        updated_at=updated_at or datetime(2025, 6, 1, 12, 0, tzinfo=UTC),
        author=author,
        labels=tuple(labels),
        ancestors=(("1", "Home"),),
        web_url=f"https://example.atlassian.net/wiki/spaces/{space}/pages/{page_id}",
        markdown=markdown if markdown is not None else f"# {title}\n\nbody",
        breadcrumb=f"{space} > Home > {title}",
        code_blocks=tuple(
            CodeBlock(language=lang, code=body, line_count=body.count("\n") + 1)
            for lang, body in code
        ),
    )


def chunks(doc: Document, texts: Sequence[str], headings: Sequence[str] = ()) -> list[Chunk]:
    out = []
    for i, text in enumerate(texts):
        heading = (headings[i],) if i < len(headings) else ()
        embed = f"{doc.breadcrumb} > {' > '.join(heading)}\n{text}"
        digest = "c1:" + hashlib.sha256(embed.encode()).hexdigest()
        out.append(Chunk(doc.page_id, i, heading, text, embed, digest, len(text.split())))
    return out


def vectors(items: Sequence[Chunk], dim: int = DIM) -> np.ndarray:
    """A deterministic unit vector per chunk, from its hash."""
    rows = []
    for chunk in items:
        seed = int(chunk.content_hash[3:19], 16)
        v = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
        rows.append(v / np.linalg.norm(v))
    return np.stack(rows) if rows else np.zeros((0, dim), dtype=np.float32)


def axis(i: int, dim: int = DIM) -> np.ndarray:
    v = np.zeros(dim, dtype=np.float32)
    v[i] = 1.0
    return v
