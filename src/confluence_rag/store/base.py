"""The store contract: the abstract ``Store`` every backend implements.

SQLite (``sqlite.py``) and PostgreSQL (``postgres.py``) implement the same methods with the same
meaning, and one contract test suite (``tests/store/``) runs against both. Everything here is
async; a backend keeps blocking work off the event loop. The records it takes and returns, and
the identity rules they follow, are in ``confluence_rag.records``.

Search indexes (full text, vectors) only ever surface chunks of live pages: ``fetch_chunks``
re-validates through SQL, so no cache can return a soft-deleted or purged page.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.index.models import Chunk
from confluence_rag.records import (
    ChunkRow,
    CodeRow,
    IndexModel,
    JobRecord,
    PageRecord,
    SearchFilters,
    SourceRecord,
    WriteResult,
)

Scored = list[tuple[int, float]]


class Store(ABC):
    """The persistence contract. Use as ``async with store:`` or ``open()`` / ``close()``."""

    # --- lifecycle ------------------------------------------------------------------------
    @abstractmethod
    async def open(self) -> None:
        """Connect and migrate the schema to head. Idempotent."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections and threads. Idempotent."""

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- index identity -------------------------------------------------------------------
    @abstractmethod
    async def ensure_index_model(self, model_id: str, dimension: int) -> None:
        """Record the model on first call; ``IndexModelMismatch`` if another built the index."""

    @abstractmethod
    async def get_index_model(self) -> IndexModel | None:
        """The model that built the index, or ``None`` before anything was indexed."""

    # --- sources --------------------------------------------------------------------------
    @abstractmethod
    async def create_source(self, source: SourceRecord) -> None:
        """Insert a source; ``Conflict`` if the id exists."""

    @abstractmethod
    async def get_source(self, source_id: str) -> SourceRecord:
        """The source with live page/chunk counts; ``SourceNotFound``."""

    @abstractmethod
    async def list_sources(self, *, counts: bool = True) -> list[SourceRecord]:
        """Every source (by creation time) with live page/chunk counts; ``counts=False``
        leaves them 0 and skips counting (a check on every search needs only ids and spaces:
        the counts cost ~10 ms at 100k chunks)."""

    @abstractmethod
    async def update_source(self, source_id: str, **fields: Any) -> None:
        """Change fields in ``SOURCE_UPDATABLE``; ``InvalidInput`` for others;
        ``SourceNotFound``."""

    @abstractmethod
    async def delete_source(self, source_id: str) -> None:
        """Remove the source, its pages, chunks, code examples and credentials, in small
        batches (other writes interleave); its active jobs end ``cancelled``. Its pages stop
        appearing in search at once. ``SourceNotFound``."""

    @abstractmethod
    async def put_credentials(self, source_id: str, ciphertext: bytes) -> None:
        """Store (replace) the encrypted credentials; ``SourceNotFound``."""

    @abstractmethod
    async def get_credentials(self, source_id: str) -> bytes:
        """The encrypted credentials; ``NotFound`` if none were stored."""

    # --- pages ----------------------------------------------------------------------------
    @abstractmethod
    async def page_versions(self, source_id: str) -> dict[str, tuple[int, bool]]:
        """``confluence_page_id -> (version, is_deleted)`` for every stored page of a source."""

    @abstractmethod
    async def skipped_versions(self, source_id: str) -> dict[str, tuple[int, str]]:
        """``confluence_page_id -> (version, rules)`` of the pages the skip rules left out."""

    @abstractmethod
    async def record_skipped(
        self, source_id: str, confluence_page_id: str, version: int, rules: str, reason: str
    ) -> None:
        """Remember that the page was skipped at ``version`` under ``rules`` (replaces any
        earlier record of it), so an unchanged page is not fetched again to be skipped again."""

    @abstractmethod
    async def forget_skipped(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        """Drop the skip records of these pages (stored since, or gone); how many there were."""

    @abstractmethod
    async def embeddings_for_hashes(
        self, source_id: str | None, hashes: Sequence[str]
    ) -> dict[str, np.ndarray]:
        """Stored vectors by content hash (within ``source_id`` if given), to skip embedding."""

    @abstractmethod
    async def write_page(
        self,
        source_id: str,
        document: Document,
        chunks: Sequence[Chunk],
        embeddings: Sequence[np.ndarray] | np.ndarray,
    ) -> WriteResult:
        """Upsert a page with its chunks, vectors, code examples and labels in ONE transaction.

        Keyed by ``(source_id, document.page_id)``; writing the same version twice leaves the
        same state. A soft-deleted page is restored. ``SourceNotFound``; ``InvalidInput`` if
        chunks and vectors disagree; ``IndexModelMismatch`` if a vector has the wrong dimension
        or no model was recorded (``ensure_index_model`` first).
        """

    @abstractmethod
    async def soft_delete_pages(
        self, source_id: str, confluence_page_ids: Sequence[str], when: datetime
    ) -> int:
        """Mark pages deleted (hidden from search at once); returns how many changed."""

    @abstractmethod
    async def restore_pages(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        """Undo a soft delete; returns how many changed."""

    @abstractmethod
    async def purge_deleted(self, older_than: datetime) -> int:
        """Remove pages soft-deleted before ``older_than`` for good; returns how many."""

    @abstractmethod
    async def get_page(self, key: str) -> PageRecord:
        """A live or soft-deleted page with its Markdown; ``PageNotFound``."""

    @abstractmethod
    async def find_page_by_title(
        self, source_id: str | None, space_key: str, title: str
    ) -> PageRecord:
        """The live page of ``space_key`` whose title equals ``title`` case-insensitively
        (Confluence titles are unique per space); ``source_id=None`` looks in every source,
        the first by creation order. ``PageNotFound`` when there is none; ``SourceNotFound``
        for an unknown ``source_id``."""

    @abstractmethod
    async def list_pages(
        self,
        source_id: str,
        space: str | None = None,
        limit: int = 50,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[PageRecord]:
        """Pages of a source by title (``markdown`` is None); ``SourceNotFound``."""

    @abstractmethod
    async def count_pages(self, source_id: str, space: str | None = None) -> int:
        """Live pages of a source (for paging through ``list_pages``)."""

    # --- search primitives ----------------------------------------------------------------
    @abstractmethod
    async def keyword_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        """Chunk ids by full-text relevance (higher is better), best first. User text never
        raises a syntax error; a query with no searchable word gives ``[]``."""

    @abstractmethod
    async def vector_candidates(
        self, vector: np.ndarray, filters: SearchFilters, limit: int
    ) -> Scored:
        """Chunk ids by cosine similarity, best first; filters applied before the top-k cut.
        ``IndexModelMismatch`` if the vector's dimension is not the index's."""

    @abstractmethod
    async def fetch_chunks(self, ids: Sequence[int]) -> list[ChunkRow]:
        """Chunks of live pages, in the order of ``ids``; missing or deleted ids are dropped."""

    @abstractmethod
    async def page_chunks(self, key: str) -> list[ChunkRow]:
        """A live page's chunks in reading order (the page view shows them on request);
        ``PageNotFound`` when the page is unknown or deleted."""

    @abstractmethod
    async def code_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        """Code example ids by full-text relevance over code + caption + heading + title;
        ``filters.language`` restricts the language."""

    @abstractmethod
    async def fetch_code(self, ids: Sequence[int]) -> list[CodeRow]:
        """Code examples of live pages, in the order of ``ids``."""

    # --- jobs -----------------------------------------------------------------------------
    @abstractmethod
    async def create_job(self, job: JobRecord) -> None:
        """Insert a job; ``Conflict`` if the id exists."""

    @abstractmethod
    async def get_job(self, job_id: str) -> JobRecord:
        """``JobNotFound``."""

    @abstractmethod
    async def update_job(self, job_id: str, **fields: Any) -> None:
        """Change fields in ``JOB_UPDATABLE``; ``InvalidInput`` for others; ``JobNotFound``."""

    @abstractmethod
    async def list_jobs(
        self, active_only: bool = True, source_id: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        """Jobs, newest first; ``active_only`` keeps queued and running ones."""

    @abstractmethod
    async def running_job_for_source(self, source_id: str) -> JobRecord | None:
        """The queued or running job of a source, if any."""

    # --- job leases: several runners (worker processes, ``serve``) share one queue ---------
    @abstractmethod
    async def claim_job(
        self, job_id: str, worker_id: str, lease_seconds: float
    ) -> JobRecord | None:
        """Atomically take this job for ``worker_id`` (status ``running``, lease set) if it is
        queued or its lease lapsed; ``None`` if it is finished, cancel-requested, or leased by
        a live runner. Never hands one job to two runners."""

    @abstractmethod
    async def claim_next_job(
        self, worker_id: str, kinds: Sequence[str], lease_seconds: float
    ) -> JobRecord | None:
        """Atomically take the oldest claimable job of one of ``kinds``, or ``None``."""

    @abstractmethod
    async def renew_lease(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """The heartbeat: extend the lease; ``False`` once the job is no longer this
        runner's (finished, cancelled by a source deletion, or taken over)."""
