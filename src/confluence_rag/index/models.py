"""Records produced by index/: chunks ready to embed and store."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a page. ``text`` is stored and shown; ``embed_text`` (breadcrumb + heading
    path + text) is what the model sees, and ``content_hash`` is a versioned hash of it, so an
    unchanged chunk is never embedded twice."""

    page_id: str
    ordinal: int
    heading_path: tuple[str, ...]
    text: str
    embed_text: str
    content_hash: str
    token_count: int
