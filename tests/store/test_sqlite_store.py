"""What only the SQLite backend has: PRAGMAs, threads, the vector cache across processes,
batched deletes, disk-full handling and backend selection."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from confluence_rag.errors import ConfigurationError, StorageFull
from confluence_rag.records import SearchFilters
from confluence_rag.settings import Settings
from confluence_rag.store import open_store
from confluence_rag.store.disk_reserve import RESERVE_BYTES, DiskReserve
from confluence_rag.store.sqlite import SQLiteStore
from tests.store import builders as b

pytestmark = pytest.mark.anyio


@pytest.fixture
async def sqlite_store(settings: Settings, sqlite_template: Path) -> SQLiteStore:
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(sqlite_template, settings.sqlite_path)
    store = SQLiteStore(settings.sqlite_path)
    await store.open()
    await store.ensure_index_model(b.MODEL, b.DIM)
    await store.create_source(b.source())
    yield store  # type: ignore[misc]
    await store.close()


async def _write(
    store: SQLiteStore, page_id: str, texts: list[str], source: str = b.SOURCE
) -> None:
    doc = b.document(page_id)
    parts = b.chunks(doc, texts)
    await store.write_page(source, doc, parts, b.vectors(parts))


async def test_pragmas_on_writer_and_readers(sqlite_store: SQLiteStore) -> None:
    def pragmas(conn: sqlite3.Connection) -> tuple[str, int, int, int]:
        return (
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA synchronous").fetchone()[0],
            conn.execute("PRAGMA foreign_keys").fetchone()[0],
            conn.execute("PRAGMA busy_timeout").fetchone()[0],
        )

    threads = sqlite_store._threads
    writer = await threads.write(pragmas)
    reader = await threads.read(pragmas)
    for journal, synchronous, foreign_keys, busy in (writer, reader):
        assert journal == "wal" and synchronous == 1 and foreign_keys == 1 and busy >= 5000


async def test_reader_connections_cannot_write(sqlite_store: SQLiteStore) -> None:
    from confluence_rag.errors import StoreError

    with pytest.raises(StoreError, match="readonly|read-only|query_only|attempt to write"):
        await sqlite_store._threads.read(lambda c: c.execute("DELETE FROM sources"))


async def test_another_process_writes_are_seen_by_vector_search(
    sqlite_store: SQLiteStore, settings: Settings
) -> None:
    await _write(sqlite_store, "1", ["first"])
    assert len(await sqlite_store.vector_candidates(b.axis(0), SearchFilters(), 10)) == 1
    other = SQLiteStore(settings.sqlite_path)  # its own connections and matrix: a 2nd process
    async with other:
        await _write(other, "2", ["second", "third"])
        await other.soft_delete_pages(b.SOURCE, ["1"], b.document().updated_at)  # type: ignore[arg-type]
    hits = await sqlite_store.vector_candidates(b.axis(0), SearchFilters(), 10)
    rows = await sqlite_store.fetch_chunks([c for c, _ in hits])
    assert sorted(r.text for r in rows) == ["second", "third"]
    assert len(hits) == 2  # the deleted page left the matrix, not just the fetched rows


async def test_a_real_subprocess_write_is_seen(
    sqlite_store: SQLiteStore, settings: Settings
) -> None:
    await _write(sqlite_store, "1", ["first"])
    assert len(await sqlite_store.vector_candidates(b.axis(0), SearchFilters(), 10)) == 1
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from confluence_rag.store.sqlite import SQLiteStore
        from tests.store import builders as b

        async def main():
            async with SQLiteStore({str(settings.sqlite_path)!r}) as store:
                doc = b.document("7")
                parts = b.chunks(doc, ["from the other process"])
                await store.write_page(b.SOURCE, doc, parts, b.vectors(parts))

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    hits = await sqlite_store.vector_candidates(b.axis(0), SearchFilters(), 10)
    texts = {r.text for r in await sqlite_store.fetch_chunks([c for c, _ in hits])}
    assert texts == {"first", "from the other process"}


async def test_matrix_matches_sql_after_many_mixed_writes(
    sqlite_store: SQLiteStore, settings: Settings
) -> None:
    """In-process deltas and a reload from SQL must give the same search results."""
    rng = np.random.default_rng(7)
    await sqlite_store.vector_candidates(b.axis(0), SearchFilters(), 1)  # load the matrix
    for step in range(60):
        page = str(rng.integers(0, 12))
        action = rng.integers(0, 4)
        if action == 0:
            await sqlite_store.soft_delete_pages(b.SOURCE, [page], b.document().updated_at)  # type: ignore[arg-type]
        elif action == 1:
            await sqlite_store.restore_pages(b.SOURCE, [page])
        else:
            count = int(rng.integers(0, 5))
            await _write(sqlite_store, page, [f"p{page} s{step} c{i}" for i in range(count)])
    query = rng.standard_normal(b.DIM).astype(np.float32)
    live = await sqlite_store.vector_candidates(query, SearchFilters(), 1000)
    fresh = SQLiteStore(settings.sqlite_path)
    async with fresh:
        reloaded = await fresh.vector_candidates(query, SearchFilters(), 1000)
    assert [c for c, _ in live] == [c for c, _ in reloaded]
    np.testing.assert_allclose([s for _, s in live], [s for _, s in reloaded], rtol=1e-5)
    assert len(await sqlite_store.fetch_chunks([c for c, _ in live])) == len(live)


async def test_event_loop_stays_responsive_during_writes_and_reads(
    sqlite_store: SQLiteStore,
) -> None:
    """All SQL runs on the store's threads: once the 120 writes and 120 searches are handed
    over, the loop keeps ticking until they finish (were the SQL on the loop, every task would
    run to completion in its first step and nothing would be left to wait for)."""
    beats: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            beats.append(time.perf_counter())
            await asyncio.sleep(0.001)

    payloads = []
    for i in range(120):
        doc = b.document(str(i))
        parts = b.chunks(doc, [f"text {i} a", f"text {i} b"])
        payloads.append((doc, parts, b.vectors(parts)))
    ticking = asyncio.create_task(ticker())
    writes = [sqlite_store.write_page(b.SOURCE, *payload) for payload in payloads]
    reads = [sqlite_store.keyword_candidates("text", SearchFilters(), 5) for _ in range(120)]
    work = [asyncio.ensure_future(call) for call in (*writes, *reads)]
    # One turn of the loop runs every task's synchronous prefix, up to its hand-over to a
    # thread; that turn is the test's doing (240 tasks at once), so the clock starts after it.
    await asyncio.sleep(0)
    handed_over = time.perf_counter()
    assert not all(task.done() for task in work)
    await asyncio.gather(*work)
    elapsed = time.perf_counter() - handed_over
    stop.set()
    await ticking
    during = [beat for beat in beats if beat >= handed_over]
    gaps = [b - a for a, b in zip([handed_over, *during], during, strict=False)]
    assert len(during) >= 3
    assert max(gaps) < max(0.25, elapsed / 2)
    assert (await sqlite_store.get_source(b.SOURCE)).page_count == 120


async def test_delete_source_is_batched_so_other_writes_interleave(
    sqlite_store: SQLiteStore,
) -> None:
    await sqlite_store.create_source(b.source("other:X"))
    doc = b.document("0")
    for start in range(0, 1000, 100):
        # many pages quickly: one transaction per page is the contract, so go direct
        for i in range(start, start + 100):
            page = b.document(str(i))
            parts = b.chunks(page, [f"chunk {i} {j}" for j in range(5)])
            await sqlite_store.write_page(b.SOURCE, page, parts, b.vectors(parts))
    finished: list[str] = []

    async def delete() -> None:
        await sqlite_store.delete_source(b.SOURCE)
        finished.append("delete")

    async def other_write() -> None:
        await asyncio.sleep(0.01)
        parts = b.chunks(doc, ["meanwhile"])
        await sqlite_store.write_page("other:X", doc, parts, b.vectors(parts))
        finished.append("write")

    started = time.perf_counter()
    await asyncio.gather(delete(), other_write())
    assert finished == ["write", "delete"]
    assert time.perf_counter() - started < 20
    (remaining,) = await sqlite_store.list_sources()
    assert (remaining.id, remaining.page_count, remaining.chunk_count) == ("other:X", 1, 1)
    counts = await sqlite_store._threads.read(
        lambda c: [
            c.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("pages", "chunks", "chunks_fts", "page_labels", "credentials")
        ]
    )
    assert counts == [1, 1, 1, 1, 0]


async def test_disk_full_is_a_clear_error_and_the_index_stays_usable(
    sqlite_store: SQLiteStore,
) -> None:
    await _write(sqlite_store, "1", ["kept safe"])
    pages = await sqlite_store._threads.write(
        lambda c: c.execute("PRAGMA page_count").fetchone()[0]
    )
    await sqlite_store._threads.write(lambda c: c.execute(f"PRAGMA max_page_count = {pages + 1}"))
    doc = b.document("2")
    parts = b.chunks(doc, ["x" * 20000 + f" {i}" for i in range(20)])
    reserve = sqlite_store.path.with_name(sqlite_store.path.name + "-reserve")
    assert reserve.stat().st_size == RESERVE_BYTES
    with pytest.raises(StorageFull, match="disk is full"):
        await sqlite_store.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    # The reserve went to the writes that record the failure (tests/reliability/test_disk_full
    # shows, on a real full disk, that the failed job is then recorded).
    assert not reserve.exists()
    hits = await sqlite_store.keyword_candidates("kept", SearchFilters(), 5)
    assert [r.text for r in await sqlite_store.fetch_chunks([c for c, _ in hits])] == ["kept safe"]
    assert set(await sqlite_store.page_versions(b.SOURCE)) == {"1"}
    await sqlite_store.close()
    await sqlite_store.open()  # the next open sets the reserve aside again
    assert reserve.stat().st_size == RESERVE_BYTES


def test_the_disk_reserve_takes_real_blocks_and_warns_when_it_cannot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reserve = DiskReserve(tmp_path / "index.sqlite3")
    assert reserve.ensure() and reserve.ensure()
    assert reserve.path.stat().st_blocks * 512 >= RESERVE_BYTES  # not a sparse file
    reserve.release()
    assert not reserve.path.exists()
    nowhere = DiskReserve(tmp_path / "missing" / "index.sqlite3")
    assert not nowhere.ensure()
    assert not nowhere.path.exists()
    assert "could not set aside 1024 KB" in caplog.text
    assert "nearly full" not in caplog.text  # that is said for ENOSPC only (test_disk_full)


def test_open_store_selects_the_backend(settings: Settings, tmp_path: Path) -> None:
    default = open_store(settings)
    assert isinstance(default, SQLiteStore) and default.path == settings.sqlite_path
    explicit_settings = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path}/x.db"})
    explicit = open_store(explicit_settings)
    assert isinstance(explicit, SQLiteStore) and explicit.path == tmp_path / "x.db"
    assert settings.backend == explicit_settings.backend == "sqlite"
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"):
        assert settings.model_copy(update={"database_url": url}).backend == "postgres"
    with pytest.raises(ConfigurationError, match="postgresql://"):
        open_store(settings.model_copy(update={"database_url": "mysql://nope"}))


async def test_open_creates_the_directory_and_is_idempotent(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "deep" / "dir" / "index.sqlite3")
    async with store:
        await store.open()
        assert await store.list_sources() == []
    await store.close()
    assert (tmp_path / "deep" / "dir" / "index.sqlite3").exists()


async def test_large_indexes_prune_the_most_common_keyword_terms(
    sqlite_store: SQLiteStore,
) -> None:
    from confluence_rag.store import sqlite_search

    for i in range(30):
        extra = " rareword" if i == 7 else ""
        await _write(sqlite_store, str(i), [f"common filler text {i}{extra}"])
    frequencies = sqlite_store._frequencies
    conn_terms = ["common", "rareword", "filler"]

    def prune(conn: sqlite3.Connection) -> list[str]:
        return frequencies.prune(conn, conn_terms)

    # small index: exact, every term kept
    assert await sqlite_store._threads.read(prune) == conn_terms
    frequencies.EXACT_UP_TO = 0  # type: ignore[misc]
    frequencies.ROW_BUDGET = 10  # type: ignore[misc]
    assert await sqlite_store._threads.read(prune) == ["rareword"]
    hits = await sqlite_store.keyword_candidates("common rareword filler", SearchFilters(), 10)
    assert [r.text for r in await sqlite_store.fetch_chunks([c for c, _ in hits])] == [
        "common filler text 7 rareword"
    ]
    exact = await sqlite_store._threads.read(
        sqlite_search.keyword_candidates, "common rareword filler", SearchFilters(), 10
    )
    assert exact[0][0] == hits[0][0] and len(exact) == 10
