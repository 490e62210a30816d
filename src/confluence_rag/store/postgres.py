"""The PostgreSQL store: psycopg 3 async with a connection pool, pgvector HNSW, weighted tsvector.

Selected by ``CONFLUENCE_RAG_DATABASE_URL=postgresql://...``. The schema comes from the same
Alembic revision chain as SQLite (run on ``open()``). Each public method is one transaction
(``write_page`` included: a page and all its chunks appear at once), so several processes
(``serve``, workers, a CLI crawl) can share one database; PostgreSQL's MVCC gives every search a
consistent snapshot while pages are being written.

The bookkeeping tables and page reads are shared with SQLite (``bookkeeping``, ``page_reads``:
plans run here with the ``POSTGRES`` dialect); what is PostgreSQL's own lives in
``postgres_pages`` (page write transactions), ``postgres_search`` (tsvector and HNSW reads) and
``postgres_jobs`` (leases with ``SKIP LOCKED``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from confluence_rag.content.models import Document
from confluence_rag.errors import (
    ConfigurationError,
    InvalidInput,
    PageNotFound,
    StoreError,
)
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
from confluence_rag.settings import POSTGRES_SCHEMES, Settings
from confluence_rag.store import bookkeeping, page_reads
from confluence_rag.store import postgres_jobs as jobs_sql
from confluence_rag.store import postgres_pages as pages_sql
from confluence_rag.store import postgres_search as search_sql
from confluence_rag.store.base import Scored, Store
from confluence_rag.store.dialect import Plan
from confluence_rag.store.migrate import upgrade
from confluence_rag.store.postgres_rows import POSTGRES, Conn, fetchall, register_vector, run_plan
from confluence_rag.store.validation import check_page_chunks
from confluence_rag.store.values import as_matrix, now, utc

T = TypeVar("T")

#: delete_source / purge remove this many pages per transaction, so a big delete does not hold
#: locks (or bloat one transaction) for long.
DELETE_BATCH_PAGES = 500
#: HNSW candidate list size per search; recall@10 >= 0.95 at 100k chunks (bench/).
DEFAULT_EF_SEARCH = 100

#: pg_advisory_lock key serialising schema migrations ("crag" in ASCII).
MIGRATION_LOCK_KEY = 0x63726167


def libpq_url(url: str) -> str:
    """The URL psycopg takes (``postgresql://``), from any accepted spelling."""
    for scheme in POSTGRES_SCHEMES:
        if url.startswith(scheme):
            return "postgresql://" + url[len(scheme) :]
    raise ConfigurationError("a PostgreSQL URL must start with postgresql://")


def sqlalchemy_url(url: str) -> str:
    """The same database for SQLAlchemy/Alembic, on the psycopg 3 driver we ship."""
    return "postgresql+psycopg://" + libpq_url(url)[len("postgresql://") :]


def redacted(url: str) -> str:
    """``url`` without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class PostgresStore(Store):
    """``Store`` on a PostgreSQL database with the pgvector extension."""

    def __init__(
        self,
        url: str,
        *,
        min_connections: int = 1,
        max_connections: int = 10,
        ef_search: int = DEFAULT_EF_SEARCH,
    ) -> None:
        self.url = libpq_url(url)
        self.ef_search = int(ef_search)
        self._min = min_connections
        self._max = max_connections
        self._pool: AsyncConnectionPool[Any] | None = None

    # --- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._pool is not None:
            return
        await self._migrate()
        pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
            self.url,
            min_size=self._min,
            max_size=self._max,
            open=False,
            # Autocommit: transactions are explicit (``conn.transaction()``), and one-statement
            # reads need none.
            kwargs={"row_factory": dict_row, "autocommit": True},
            configure=register_vector,
            name="confluence-rag",
        )
        try:
            await pool.open(wait=True, timeout=30)
        except psycopg.Error as exc:
            await pool.close()
            raise StoreError(f"cannot connect to {redacted(self.url)}: {exc}") from exc
        except Exception:
            await pool.close()
            raise
        self._pool = pool

    async def _migrate(self) -> None:
        """Alembic to head, one process at a time: a server and workers starting together
        would otherwise race to create the same tables. The advisory lock is held by a side
        connection while Alembic works on its own."""
        try:
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as lock:
                await lock.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
                try:
                    await asyncio.to_thread(upgrade, sqlalchemy_url(self.url))
                finally:
                    await lock.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {redacted(self.url)}: {exc}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def _run(
        self, fn: Callable[..., Awaitable[T]], *args: Any, transaction: bool = True
    ) -> T:
        """``fn(conn, *args)`` in one transaction; driver errors become ``StoreError``.

        ``transaction=False`` is for reads that are ONE statement (a statement always sees one
        snapshot): they skip the BEGIN / COMMIT round trips, which matters for search latency.
        """
        if self._pool is None:
            raise StoreError("the store is not open: use 'async with store:' or open() first")
        try:
            async with self._pool.connection() as conn:
                if not transaction:
                    return await fn(conn, *args)
                async with conn.transaction():
                    return await fn(conn, *args)
        except psycopg.Error as exc:
            raise StoreError(f"database error: {exc}") from exc

    async def _plan(self, plan: Callable[..., Plan[T]], *args: Any) -> T:
        """A shared plan (``bookkeeping``, ``page_reads``) with PostgreSQL's dialect, in one
        transaction."""

        async def run(conn: Conn) -> T:
            return await run_plan(conn, plan(POSTGRES, *args))

        return await self._run(run)

    # --- index identity -------------------------------------------------------------------
    async def ensure_index_model(self, model_id: str, dimension: int) -> None:
        rebuild = f"drop the database at {redacted(self.url)}"
        await self._plan(bookkeeping.ensure_index_model, model_id, int(dimension), rebuild)

    async def get_index_model(self) -> IndexModel | None:
        return await self._plan(bookkeeping.get_index_model)

    # --- sources --------------------------------------------------------------------------
    async def create_source(self, source: SourceRecord) -> None:
        await self._plan(bookkeeping.create_source, source)

    async def get_source(self, source_id: str) -> SourceRecord:
        return await self._plan(bookkeeping.get_source, source_id)

    async def list_sources(self, *, counts: bool = True) -> list[SourceRecord]:
        return await self._plan(bookkeeping.list_sources, counts)

    async def update_source(self, source_id: str, **fields: Any) -> None:
        await self._plan(bookkeeping.update_source, source_id, fields)

    async def delete_source(self, source_id: str) -> None:
        # 1. Hide everything at once (out of every search) and cancel active jobs.
        await self._run(self._hide_source, source_id)
        # 2. Remove pages in small transactions.
        while await self._run(self._delete_some_pages, source_id):
            pass
        # 3. The source row (credentials cascade).
        await self._run(self._delete_source_row, source_id)

    @staticmethod
    async def _hide_source(conn: Conn, source_id: str) -> None:
        await run_plan(conn, bookkeeping.require_source(POSTGRES, source_id, lock=True))
        reason = "the source was deleted"
        await run_plan(conn, bookkeeping.cancel_active_jobs(POSTGRES, source_id, reason))
        await conn.execute(
            "UPDATE pages SET is_deleted = true, deleted_at = %s WHERE source_id = %s "
            "AND NOT is_deleted",
            (now(), source_id),
        )

    @staticmethod
    async def _delete_some_pages(conn: Conn, source_id: str) -> int:
        rows = await fetchall(
            conn,
            "SELECT id FROM pages WHERE source_id = %s LIMIT %s",
            (source_id, DELETE_BATCH_PAGES),
        )
        ids = [int(row["id"]) for row in rows]
        return await pages_sql.delete_pages_batch(conn, ids) if ids else 0

    @staticmethod
    async def _delete_source_row(conn: Conn, source_id: str) -> None:
        await conn.execute("DELETE FROM sources WHERE id = %s", (source_id,))

    async def put_credentials(self, source_id: str, ciphertext: bytes) -> None:
        await self._plan(bookkeeping.put_credentials, source_id, ciphertext)

    async def get_credentials(self, source_id: str) -> bytes:
        return await self._plan(bookkeeping.get_credentials, source_id)

    # --- pages ----------------------------------------------------------------------------
    async def page_versions(self, source_id: str) -> dict[str, tuple[int, bool]]:
        return await self._plan(page_reads.page_versions, source_id)

    async def skipped_versions(self, source_id: str) -> dict[str, tuple[int, str]]:
        return await self._plan(bookkeeping.skipped_versions, source_id)

    async def record_skipped(
        self, source_id: str, confluence_page_id: str, version: int, rules: str, reason: str
    ) -> None:
        await self._plan(
            bookkeeping.record_skipped, source_id, confluence_page_id, version, rules, reason
        )

    async def forget_skipped(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        return await self._plan(bookkeeping.forget_skipped, source_id, list(confluence_page_ids))

    async def embeddings_for_hashes(
        self, source_id: str | None, hashes: Sequence[str]
    ) -> dict[str, np.ndarray]:
        if not hashes:
            return {}
        return await self._plan(page_reads.embeddings_for_hashes, source_id, list(hashes))

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
        return await self._run(pages_sql.write_page, source_id, document, chunks, matrix, now())

    async def soft_delete_pages(
        self, source_id: str, confluence_page_ids: Sequence[str], when: datetime
    ) -> int:
        return await self._run(
            pages_sql.soft_delete_pages, source_id, list(confluence_page_ids), when
        )

    async def restore_pages(self, source_id: str, confluence_page_ids: Sequence[str]) -> int:
        return await self._run(pages_sql.restore_pages, source_id, list(confluence_page_ids))

    async def purge_deleted(self, older_than: datetime) -> int:
        cutoff = utc(older_than)

        async def purge_some(conn: Conn) -> int:
            rows = await fetchall(
                conn,
                "SELECT id FROM pages WHERE is_deleted AND deleted_at < %s LIMIT %s",
                (cutoff, DELETE_BATCH_PAGES),
            )
            ids = [int(row["id"]) for row in rows]
            return await pages_sql.delete_pages_batch(conn, ids) if ids else 0

        total = 0
        while removed := await self._run(purge_some):
            total += removed
        return total

    async def get_page(self, key: str) -> PageRecord:
        return await self._plan(page_reads.get_page, key)

    async def find_page_by_title(
        self, source_id: str | None, space_key: str, title: str
    ) -> PageRecord:
        return await self._plan(page_reads.find_page_by_title, source_id, space_key, title)

    async def list_pages(
        self,
        source_id: str,
        space: str | None = None,
        limit: int = 50,
        offset: int = 0,
        include_deleted: bool = False,
    ) -> list[PageRecord]:
        return await self._plan(
            page_reads.list_pages, source_id, space, limit, offset, include_deleted
        )

    async def count_pages(self, source_id: str, space: str | None = None) -> int:
        return await self._plan(page_reads.count_pages, source_id, space)

    # --- search primitives ----------------------------------------------------------------
    async def keyword_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        return await self._run(
            search_sql.keyword_candidates, query, filters, limit, transaction=False
        )

    async def vector_candidates(
        self, vector: np.ndarray, filters: SearchFilters, limit: int
    ) -> Scored:
        query = np.asarray(vector, dtype=np.float32)
        if query.ndim != 1 or not np.isfinite(query).all():
            raise InvalidInput(f"a query vector must be 1-D and finite, got shape {query.shape}")

        return await self._run(search_sql.vector_candidates, query, filters, limit, self.ef_search)

    async def fetch_chunks(self, ids: Sequence[int]) -> list[ChunkRow]:
        if not ids:
            return []
        return await self._run(search_sql.fetch_chunks, list(ids), transaction=False)

    async def page_chunks(self, key: str) -> list[ChunkRow]:
        page = await self.get_page(key)
        if page.is_deleted:
            raise PageNotFound(f"page {key!r} was deleted", details={"page_key": key})
        source_id, confluence_page_id = split_page_key(key)
        return await self._run(
            search_sql.page_chunks, source_id, confluence_page_id, transaction=False
        )

    async def code_candidates(self, query: str, filters: SearchFilters, limit: int) -> Scored:
        return await self._run(search_sql.code_candidates, query, filters, limit, transaction=False)

    async def fetch_code(self, ids: Sequence[int]) -> list[CodeRow]:
        if not ids:
            return []
        return await self._run(search_sql.fetch_code, list(ids), transaction=False)

    # --- jobs -----------------------------------------------------------------------------
    async def create_job(self, job: JobRecord) -> None:
        await self._plan(bookkeeping.create_job, job)

    async def get_job(self, job_id: str) -> JobRecord:
        return await self._plan(bookkeeping.get_job, job_id)

    async def update_job(self, job_id: str, **fields: Any) -> None:
        await self._plan(bookkeeping.update_job, job_id, fields)

    async def list_jobs(
        self, active_only: bool = True, source_id: str | None = None, limit: int = 100
    ) -> list[JobRecord]:
        return await self._plan(bookkeeping.list_jobs, active_only, source_id, limit)

    async def running_job_for_source(self, source_id: str) -> JobRecord | None:
        jobs = await self.list_jobs(active_only=True, source_id=source_id, limit=1)
        return jobs[0] if jobs else None

    # --- job leases (several worker processes; PostgreSQL only) ----------------------------
    async def claim_job(
        self, job_id: str, worker_id: str, lease_seconds: float
    ) -> JobRecord | None:
        """Atomically take a queued job (or one whose lease lapsed) for ``worker_id``."""
        return await self._run(jobs_sql.claim_job, job_id, worker_id, lease_seconds)

    async def claim_next_job(
        self, worker_id: str, kinds: Sequence[str], lease_seconds: float
    ) -> JobRecord | None:
        """Atomically take the oldest claimable job of ``kinds`` (``FOR UPDATE SKIP LOCKED``)."""
        return await self._run(jobs_sql.claim_next_job, worker_id, list(kinds), lease_seconds)

    async def renew_lease(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Heartbeat; ``False`` once the job is no longer this worker's."""
        return await self._run(jobs_sql.renew_lease, job_id, worker_id, lease_seconds)


def open_postgres_store(settings: Settings) -> PostgresStore:
    """The store ``CONFLUENCE_RAG_DATABASE_URL`` names (not yet opened)."""
    if not settings.database_url:
        raise ConfigurationError("CONFLUENCE_RAG_DATABASE_URL is not set")
    return PostgresStore(settings.database_url)
