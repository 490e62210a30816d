"""What ``write_page`` does to a page, decided once for both backends, as pure code.

A backend reads the stored page (``ExistingPage``) and its chunks (``OldChunk``) inside its
write transaction, asks ``plan_page_write`` what to do, and executes the plan its own way
(SQLite also keeps its FTS tables and in-memory matrix in step; PostgreSQL's indexes follow on
their own). The decisions here: is this the same version with the same content (then only the
metadata is refreshed, chunks and vectors stay), how many chunks are reused, written and
removed, and the ``WriteResult`` the caller gets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from confluence_rag.content.models import Document
from confluence_rag.index.models import Chunk
from confluence_rag.records import WriteResult, page_key
from confluence_rag.store.dialect import Dialect
from confluence_rag.store.rows import Row
from confluence_rag.store.values import normalise_labels, utc


@dataclass(frozen=True, slots=True, kw_only=True)
class PageColumns:
    """The ``pages`` columns a write sets from the document, encoded for one backend."""

    title: str
    space_key: str
    type: str
    status: str
    url: str
    breadcrumb: str
    ancestors: Any
    labels: Any
    author: str | None
    created_at: Any
    updated_at: Any
    markdown: str

    @classmethod
    def of(cls, document: Document, d: Dialect) -> PageColumns:
        return cls(
            title=document.title,
            space_key=document.space_key,
            type=document.type,
            status=document.status,
            url=document.web_url,
            breadcrumb=document.breadcrumb,
            ancestors=d.to_json([list(pair) for pair in document.ancestors]),
            labels=d.to_json(list(normalise_labels(document.labels))),
            author=document.author,
            created_at=d.to_time(document.created_at),
            updated_at=d.to_time(document.updated_at),
            markdown=document.markdown,
        )

    @staticmethod
    def names(*, title: bool = True) -> tuple[str, ...]:
        return tuple(f.name for f in fields(PageColumns) if title or f.name != "title")

    def values(self, *, title: bool = True) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.names(title=title))


@dataclass(frozen=True, slots=True, kw_only=True)
class ExistingPage:
    """The stored row of the page being written (what the decision needs)."""

    id: int
    version: int
    is_deleted: bool
    title: str
    space_key: str
    type: str
    updated_at: datetime | None
    labels: tuple[str, ...]

    #: The columns to select for ``from_row``.
    COLUMNS = "id, confluence_version, is_deleted, title, space_key, type, updated_at, labels"

    @classmethod
    def from_row(cls, row: Row, d: Dialect) -> ExistingPage:
        return cls(
            id=int(row["id"]),
            version=int(row["confluence_version"]),
            is_deleted=bool(row["is_deleted"]),
            title=row["title"],
            space_key=row["space_key"],
            type=row["type"],
            updated_at=d.from_time(row["updated_at"]),
            labels=tuple(d.from_json(row["labels"], [])),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OldChunk:
    id: int
    content_hash: str
    heading_path: tuple[str, ...]
    text: str

    COLUMNS = "id, content_hash, heading_path, text"

    @classmethod
    def from_row(cls, row: Row, d: Dialect) -> OldChunk:
        return cls(
            id=int(row["id"]),
            content_hash=row["content_hash"],
            heading_path=tuple(d.from_json(row["heading_path"], [])),
            text=row["text"],
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PageWritePlan:
    """``refresh``: same version and content, only metadata changes (chunks, vectors and
    full-text rows stay); ``create`` / ``rewrite``: the page's chunks are replaced."""

    action: Literal["create", "refresh", "rewrite"]
    key: str
    undeleted: bool
    chunks_written: int
    chunks_reused: int
    chunks_removed: int
    #: Something search filters on (space, type, updated time, labels) changed in a refresh:
    #: caches keyed on the index generation must be rebuilt.
    filters_changed: bool

    def result(self, *, page_id: int, code_examples: int) -> WriteResult:
        return WriteResult(
            page_id=page_id,
            page_key=self.key,
            created=self.action == "create",
            unchanged=self.action == "refresh",
            undeleted=self.undeleted,
            chunks_written=self.chunks_written,
            chunks_reused=self.chunks_reused,
            chunks_removed=self.chunks_removed,
            code_examples=code_examples,
        )


def plan_page_write(
    source_id: str,
    existing: ExistingPage | None,
    old_chunks: Sequence[OldChunk],
    document: Document,
    chunks: Sequence[Chunk],
) -> PageWritePlan:
    key = page_key(source_id, document.page_id)
    old_hashes = [chunk.content_hash for chunk in old_chunks]
    new_hashes = [chunk.content_hash for chunk in chunks]
    reused = sum((Counter(old_hashes) & Counter(new_hashes)).values())
    if existing is None:
        return PageWritePlan(
            action="create",
            key=key,
            undeleted=False,
            chunks_written=len(chunks),
            chunks_reused=reused,
            chunks_removed=0,
            filters_changed=True,
        )
    unchanged = (
        not existing.is_deleted
        and existing.version == document.version
        and existing.title == document.title
        and old_hashes == new_hashes
        # The hash covers what is embedded; text and heading are what full text and hits show.
        and all(
            old.text == new.text and old.heading_path == tuple(new.heading_path)
            for old, new in zip(old_chunks, chunks, strict=True)
        )
    )
    if unchanged:
        filtered_on = (existing.space_key, existing.type, existing.updated_at, existing.labels)
        wanted = (
            document.space_key,
            document.type,
            utc(document.updated_at),
            normalise_labels(document.labels),
        )
        return PageWritePlan(
            action="refresh",
            key=key,
            undeleted=False,
            chunks_written=0,
            chunks_reused=len(chunks),
            chunks_removed=0,
            filters_changed=filtered_on != wanted,
        )
    return PageWritePlan(
        action="rewrite",
        key=key,
        undeleted=existing.is_deleted,
        chunks_written=len(chunks),
        chunks_reused=reused,
        chunks_removed=len(old_chunks),
        filters_changed=True,
    )
