"""SQLite behind async code: one writer thread, a small pool of reader threads.

- Every write runs on ONE thread that owns the only write connection, inside
  ``BEGIN IMMEDIATE ... COMMIT``: writes from this process queue in order instead of fighting
  over the lock ("database is locked"), and a failed write rolls back entirely.
- Reads run on a few threads, each with its own connection (``query_only``), so searches run
  while a crawl writes (WAL lets readers and the writer proceed at once).
- Nothing blocks the event loop: callers ``await`` the executor.

PRAGMAs and why:
- ``journal_mode=WAL``: readers never wait for the writer, nor the writer for readers.
- ``synchronous=NORMAL``: with WAL this is durable against application crashes (a committed
  transaction is in the WAL file); only a power loss / OS crash may lose the last transactions,
  which a re-crawl or the next sync repairs, while FULL would fsync on every page written.
- ``foreign_keys=ON``: deleting a page cascades to its chunks, code examples and labels.
- ``busy_timeout``: another process (a CLI crawl next to the server) holding the write lock makes
  us wait, not fail.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from confluence_rag.errors import StorageFull, StoreError
from confluence_rag.store.disk_reserve import DiskReserve

T = TypeVar("T")

BUSY_TIMEOUT_MS = 15_000
READERS = 3


class SQLiteThreads:
    """The writer thread, the reader threads and their connections for one database file."""

    def __init__(self, path: Path, *, readers: int = READERS) -> None:
        self.path = path
        self._readers = readers
        self._writer: ThreadPoolExecutor | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_conn: sqlite3.Connection | None = None
        self._reserve = DiskReserve(path)

    @property
    def is_open(self) -> bool:
        return self._writer is not None

    def start(self) -> None:
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._reader_pool = ThreadPoolExecutor(
            max_workers=self._readers, thread_name_prefix="sqlite-reader"
        )

    def stop(self) -> None:
        for pool in (self._writer, self._reader_pool):
            if pool is not None:
                pool.shutdown(wait=True)
        self._writer = self._reader_pool = None
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._write_conn = None
        self._local = threading.local()

    # --- running work -------------------------------------------------------------------------
    async def write(
        self, fn: Callable[..., T], *args: Any, after: Callable[[T], None] | None = None
    ) -> T:
        """Run ``fn(conn, *args)`` on the writer thread inside one IMMEDIATE transaction;
        ``after(result)`` runs on the same thread right after COMMIT, before any other write
        (it keeps in-memory caches in commit order)."""
        if self._writer is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self._in_transaction, fn, args, after)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` on a reader thread (autocommit; ``fn`` may open a
        transaction for a consistent snapshot across several statements)."""
        if self._reader_pool is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader_pool, self._reading, fn, args)

    def _in_transaction(
        self,
        fn: Callable[..., T],
        args: tuple[Any, ...],
        after: Callable[[T], None] | None,
    ) -> T:
        conn = self._writer_connection()
        try:
            with translated_errors():
                conn.execute("BEGIN IMMEDIATE")
                try:
                    result = fn(conn, *args)
                except BaseException:
                    if conn.in_transaction:  # SQLite may already have rolled back (disk full)
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
        except StorageFull:
            self._reserve.release()  # room for the writes that record this failure
            raise
        if after is not None:
            after(result)
        return result

    def _reading(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect(reader=True)
            self._local.conn = conn
        with translated_errors():
            try:
                return fn(conn, *args)
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def _writer_connection(self) -> sqlite3.Connection:
        if self._write_conn is None:
            self._reserve.ensure()  # once per open: after a full disk, the next open retries
            self._write_conn = self._connect(reader=False)
        return self._write_conn

    def _connect(self, *, reader: bool) -> sqlite3.Connection:
        with translated_errors():
            conn = sqlite3.connect(
                self.path,
                isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                check_same_thread=False,  # closed by stop() from another thread
                timeout=BUSY_TIMEOUT_MS / 1000,
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA temp_store = MEMORY")
            conn.execute("PRAGMA cache_size = -32000")  # 32 MB page cache per connection
            if reader:
                conn.execute("PRAGMA query_only = ON")
            else:
                conn.execute("PRAGMA journal_mode = WAL")
        with self._connections_lock:
            self._connections.append(conn)
        return conn


@contextmanager
def translated_errors() -> Iterator[None]:
    """Turn sqlite3 errors into the store's error tree (ours pass through untouched)."""
    try:
        yield
    except sqlite3.Error as exc:
        if is_disk_full(exc):
            raise StorageFull(
                "the disk is full: the write was rolled back and the index stays usable; "
                "free some space and run the sync again"
            ) from exc
        raise StoreError(f"database error: {exc}") from exc


# SQLITE_IOERR_SHMSIZE: no room to create or grow the -shm file that every connection to a WAL
# database maps; on a full disk, that is how opening the database fails.
_DISK_FULL_ERRORS = ("SQLITE_FULL", "SQLITE_IOERR_SHMSIZE")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an sqlite3 error means the disk holding the database has no room left."""
    return isinstance(exc, sqlite3.Error) and (
        "disk is full" in str(exc) or getattr(exc, "sqlite_errorname", "") in _DISK_FULL_ERRORS
    )
