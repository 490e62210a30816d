"""The SQLite store: one file, WAL, FTS5 for keywords, numpy for vectors.

The async methods hand work to ``SQLiteThreads`` (one writer thread, a few reader threads). The
bookkeeping tables and page reads are shared with PostgreSQL (``bookkeeping``, ``page_reads``:
plans run here with the ``SQLITE`` dialect); what is SQLite's own lives in ``sqlite_pages``
(page write transactions, FTS rows), ``sqlite_search`` (FTS5 reads), ``sqlite_jobs`` (leases)
and the in-memory vector matrix in ``sqlite_vectors`` / ``vector_index``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from confluence_rag.content.models import Document
from confluence_rag.errors import IndexModelMismatch, InvalidInput, PageNotFound
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
    split_page_key,
)
from confluence_rag.store import bookkeeping, page_reads
from confluence_rag.store import sqlite_jobs as jobs_sql
from confluence_rag.store import sqlite_pages as pages_sql
from confluence_rag.store import sqlite_search as search_sql
from confluence_rag.store.base import Scored, Store
from confluence_rag.store.dialect import Plan
from confluence_rag.store.migrate import upgrade
from confluence_rag.store.sqlite_conn import READERS, SQLiteThreads
from confluence_rag.store.sqlite_rows import SQLITE, run_plan
from confluence_rag.store.sqlite_vectors import VectorDelta, VectorSync
from confluence_rag.store.validation import check_page_chunks
from confluence_rag.store.values import as_matrix, iso_time, now

T = TypeVar("T")

# delete_source / purge remove pages in transactions of about this many chunks (~75 us each,
# mostly FTS5 un-indexing the text), so other writes (a crawl of another source, job
# heartbeats) get the writer every ~50 ms instead of waiting for the whole source.
DELETE_BATCH_CHUNKS = 500


def _planned(conn: Any, plan: Callable[..., Plan[T]], *args: Any) -> T:
    """Run a shared plan (``bookkeeping``, ``page_reads``) with SQLite's dialect."""
    return run_plan(conn, plan(SQLITE, *args))


def _batch_by_chunks(conn: Any, where: str, params: tuple[Any, ...]) -> list[int]:
    """Ids of pages matching ``where`` holding about ``DELETE_BATCH_CHUNKS`` chunks in all
    (at least one page, however large)."""
    rows = conn.execute(
        "SELECT p.id, (SELECT count(*) FROM chunks c WHERE c.page_id = p.id) FROM pages p "
        f"WHERE {where} LIMIT ?",
        (*params, DELETE_BATCH_CHUNKS),
    )
    ids: list[int] = []
    chunks = 0
    for page_id, count in rows:
        if ids and chunks + count > DELETE_BATCH_CHUNKS:
            break
        ids.append(int(page_id))
        chunks += int(count)
    return ids


class SQLiteStore(Store):
    """``Store`` on one SQLite file (created with its directory on ``open()``)."""

    def __init__(self, path: Path, *, readers: int = READERS) -> None:
        self.path = Path(path)
        self._threads = SQLiteThreads(self.path, readers=readers)
        self._vectors = VectorSync()
        self._frequencies = search_sql.TermFrequencies()
        self._allowed_lock = threading.Lock()
        self._allowed_cache: dict[tuple[SearchFilters, int], np.ndarray] = {}

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    # --- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._threads.is_open:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(upgrade, self.url)
        self._threads.start()
        # Switch to WAL now (it persists in the file) rather than on the first write.
        await self._threads.write(lambda conn: None)

    async def close(self) -> None:
        if not self._threads.is_open:
            return
        await asyncio.to_thread(self._threads.stop)
        self._vectors.reset()

    async def _write_indexed(self, fn: Any, *args: Any) -> Any:
        """A write whose transaction returns ``(value, VectorDelta | None)``: the delta is
        applied to the matrix on the writer thread right after COMMIT, before the next write."""

        value, _ = await self._threads.write(fn, *args, after=self._apply_delta)
        return value

    def _apply_delta(self, outcome: tuple[Any, VectorDelta | None]) -> None:
        if outcome[1] is not None:
            self._vectors.apply(outcome[1])

    # --- index identity -------------------------------------------------------------------
    async def ensure_index_model(self, model_id: str, dimension: int) -> None:
        def reset_if_changed(changed: bool) -> None:
            if changed:
                self._vectors.reset()

        await self._threads.write(
            _planned,
            bookkeeping.ensure_index_model,
            model_id,
            int(dimension),
            f"the index at {self.path}",
            after=reset_if_changed,
        )

    async def get_index_model(self) -> IndexModel | None:
        return await self._threads.read(_planned, bookkeeping.get_index_model)

    # --- sources --------------------------------------------------------------------------
    async def create_source(self, source: SourceRecord) -> None:
        await self._threads.write(_planned, bookkeeping.create_source, source)

    async def get_source(self, source_id: str) -> SourceRecord:
        return await self._threads.read(_planned, bookkeeping.get_source, source_id)

    async def list_sources(self, *, counts: bool = True) -> list[SourceRecord]:
        return await self._threads.read(_planned, bookkeeping.list_sources, counts)

    async def update_source(self, source_id: str, **fields: Any) -> None:
        await self._threads.write(_planned, bookkeeping.update_source, source_id, fields)

    async def delete_source(self, source_id: str) -> None:
        # 1. Hide everything at once: pages soft-deleted (out of the matrix and of filtered
        #    searches), active jobs cancelled. One short transaction.
        await self._write_indexed(self._hide_source, source_id)
        # 2. Remove pages in small transactions.
        while await self._threads.write(self._delete_some_pages, source_id):
            pass
        # 3. The source row (credentials cascade).
        await self._threads.write(
            lambda conn: conn.execute("DELETE FROM sources WHERE id = ?", (source_id,))
        )

    @staticmethod
    def _hide_source(conn: Any, source_id: str) -> tuple[None, VectorDelta | None]:
        _planned(conn, bookkeeping.require_source, source_id)
        _planned(conn, bookkeeping.cancel_active_jobs, source_id, "the source was deleted")
        page_ids = [
            int(row[0])
            for row in conn.execute(
                "SELECT id FROM pages WHERE source_id = ? AND is_deleted = 0", (source_id,)
            )
        ]
        if not page_ids:
            return None, None
        old_gen, new_gen = pages_sql.bump_generation(conn)
        conn.execute(
            "UPDATE pages SET is_deleted = 1, deleted_at = ? WHERE source_id = ? "
            "AND is_deleted = 0",
            (iso_time(now()), source_id),
        )
        return None, VectorDelta(old_gen, new_gen, remove_pages=page_ids)

    @staticmethod
    def _delete_some_pages(conn: Any, source_id: str) -> int:
        return pages_sql.delete_pages_batch(
            conn, _batch_by_chunks(conn, "p.source_id = ?", (source_id,))
        )

    async def put_credentials(self, source_id: str, ciphertext: bytes) -> None:
        await self._threads.write(_planned, bookkeeping.put_credentials, source_id, ciphertext)

    async def get_credentials(self, source_id: str) -> bytes:
        return await self._threads.read(_planned, bookkeeping.get_credentials, source_id)

    # --- pages ----------------------------------------------------------------------------
    async def page_versions(self, source_id: str) -> dict[str, tuple[int, bool]]:
        return await self._threads.read(_planned, page_reads.page_versions, source_id)

    async def skipped_versions(self, source_id: str) -> dict[str, tuple[int, str]]:
        return await self._threads.read(_planned, bookkeeping.skipped_versions, source_id)

    async def record_skipped(
        self, source_id: str, confluence_page_id: str, version: int, rules: str, reason: str
    ) -> None:
        await self._threads.write(
            _planned,
            bookkeeping.record_skipped,
            source_id,
            confluence_page_id,
            version,
            rules,
            reason,
        )

    async def forget_skipped(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        return await self._threads.write(
            _planned, bookkeeping.forget_skipped, source_id, list(confluence_page_ids)
        )

    async def embeddings_for_hashes(
        self, source_id: str | None, hashes: Sequence[str]
    ) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        return await self._threads.read(
            _planned, page_reads.embeddings_for_hashes, source_id, list(hashes)
        )

    async def write_page(
        self,
        source_id: str,
        document: Document,
        chunks: Sequence[Chunk],
        embeddings: Sequence[np.ndarray] | np.ndarray,
    ) -> WriteResult:
        chunks = list(chunks)
        matrix = as_matrix(embeddings, len(chunks))
        check_page_chunks(document, chunks)
        result: WriteResult = await self._write_indexed(
            pages_sql.write_page, source_id, document, chunks, matrix, now()
        )
        return result

    async def soft_delete_pages(
        self, source_id: str, confluence_page_ids: Sequence[str], when: datetime
    ) -> int:
        count: int = await self._write_indexed(
            pages_sql.soft_delete_pages, source_id, list(confluence_page_ids), when
        )
        return count

    async def restore_pages(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        count: int = await self._write_indexed(
            pages_sql.restore_pages, source_id, list(confluence_page_ids)
        )
        return count

    async def purge_deleted(self, older_than: datetime) -> int:
        cutoff = iso_time(older_than)

        def purge_some(conn: Any) -> int:
            where = "p.is_deleted = 1 AND p.deleted_at < ?"
            return pages_sql.delete_pages_batch(conn, _batch_by_chunks(conn, where, (cutoff,)))

        total = 0
        while removed := await self._threads.write(purge_some):
            total += removed
        return total

    async def get_page(self, key: str) -> PageRecord:
        return await self._threads.read(_planned, page_reads.get_page, key)

    async def find_page_by_title(
        self, source_id: str | None, space_key: str, title: str
    ) -> PageRecord:
        return await self._threads.read(
            _planned, page_reads.find_page_by_title, source_id, space_key, title
        )

    async def list_pages(
        self,
        source_id: str,
        space: str | None = None,
        limit: int = 50,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[PageRecord]:
        return await self._threads.read(
            _planned, page_reads.list_pages, source_id, space, limit, offset, include_deleted
        )

    async def count_pages(self, source_id: str, space: str | None = None) -> int:
        return await self._threads.read(_planned, page_reads.count_pages, source_id, space)

    # --- search primitives ----------------------------------------------------------------
    async def keyword_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        return await self._threads.read(
            search_sql.keyword_candidates, query, filters, limit, self._frequencies
        )

    async def vector_candidates(
        self, vector: np.ndarray, filters: SearchFilters, limit: int
    ) -> Scored:
        query = np.asarray(vector, dtype=np.float32)
        if query.ndim != 1 or not np.isfinite(query).all():
            raise InvalidInput(f"a query vector must be 1-D and finite, got shape {query.shape}")
        return await self._threads.read(partial(self._vector_search, query, filters, limit))

    def _vector_search(
        self, query: np.ndarray, filters: SearchFilters, limit: int, conn: Any
    ) -> Scored:
        index = self._vectors.refresh(conn)
        if index is None:
            return []  # nothing was ever indexed
        if query.shape[0] != index.dimension:
            model = _planned(conn, bookkeeping.get_index_model)
            name = model.model_id if model else "?"
            raise IndexModelMismatch(
                f"the query vector has {query.shape[0]} dimensions but this index was built "
                f"by {name!r} with {index.dimension}: search with the model that built it, "
                "or rebuild the index with the new one",
                details={"index_dimension": index.dimension, "got": int(query.shape[0])},
            )
        allowed = (
            self._allowed_pages(conn, filters) if page_reads.has_page_filters(filters) else None
        )
        return index.search(query, limit, allowed)

    def _allowed_pages(self, conn: Any, filters: SearchFilters) -> np.ndarray:
        """Live page ids matching ``filters``, cached per index generation: a UI filtering on
        one space repeats the same filters query after query, and any write moves the
        generation (so a cached set is never staler than the matrix it masks)."""
        generation = conn.execute("SELECT generation FROM index_meta WHERE id = 1").fetchone()[0]
        key = (replace(filters, language=None), int(generation))
        with self._allowed_lock:
            cached = self._allowed_cache.get(key)
        if cached is not None:
            return cached
        pages = search_sql.allowed_pages(conn, filters)
        with self._allowed_lock:
            if len(self._allowed_cache) >= 64:
                self._allowed_cache.clear()
            self._allowed_cache[key] = pages
        return pages

    async def fetch_chunks(self, ids: Sequence[int]) -> list[ChunkRow]:
        if not ids:
            return []
        return await self._threads.read(search_sql.fetch_chunks, list(ids))

    async def page_chunks(self, key: str) -> list[ChunkRow]:
        page = await self.get_page(key)
        if page.is_deleted:
            raise PageNotFound(f"page {key!r} was deleted", details={"page_key": key})
        source_id, confluence_page_id = split_page_key(key)
        return await self._threads.read(search_sql.page_chunks, source_id, confluence_page_id)

    async def code_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        return await self._threads.read(search_sql.code_candidates, query, filters, limit)

    async def fetch_code(self, ids: Sequence[int]) -> list[CodeRow]:
        if not ids:
            return []
        return await self._threads.read(search_sql.fetch_code, list(ids))

    # --- jobs -----------------------------------------------------------------------------
    async def create_job(self, job: JobRecord) -> None:
        await self._threads.write(_planned, bookkeeping.create_job, job)

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._threads.read(_planned, bookkeeping.get_job, job_id)

    async def update_job(self, job_id: str, **fields: Any) -> None:
        await self._threads.write(_planned, bookkeeping.update_job, job_id, fields)

    async def list_jobs(
        self, active_only: bool = True, source_id: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        return await self._threads.read(
            _planned, bookkeeping.list_jobs, active_only, source_id, limit
        )

    async def running_job_for_source(self, source_id: str) -> JobRecord | None:
        jobs = await self.list_jobs(active_only=True, source_id=source_id, limit=1)
        return jobs[0] if jobs else None

    # --- job leases (one write lock: atomic across processes on this file) ----------------
    async def claim_job(
        self, job_id: str, worker_id: str, lease_seconds: float
    ) -> JobRecord | None:
        return await self._threads.write(jobs_sql.claim_job, job_id, worker_id, lease_seconds)

    async def claim_next_job(
        self, worker_id: str, kinds: Sequence[str], lease_seconds: float
    ) -> JobRecord | None:
        return await self._threads.write(
            jobs_sql.claim_next_job, worker_id, list(kinds), lease_seconds
        )

    async def renew_lease(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        return await self._threads.write(jobs_sql.renew_lease, job_id, worker_id, lease_seconds)
