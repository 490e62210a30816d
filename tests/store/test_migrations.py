"""Alembic migrations: upgrade to head and downgrade to base on a database holding data."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from confluence_rag.records import SearchFilters
from confluence_rag.store.migrate import current_revision, downgrade, head_revision, upgrade
from confluence_rag.store.sqlite import SQLiteStore
from tests.store import builders as b

pytestmark = pytest.mark.anyio

TABLES = {
    "sources",
    "credentials",
    "pages",
    "page_labels",
    "chunks",
    "code_examples",
    "jobs",
    "index_meta",
    "chunks_fts",
    "code_fts",
    "skipped_pages",
}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table')").fetchall()
    return {r[0] for r in rows}


async def test_upgrade_and_downgrade_with_data(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite3"
    url = f"sqlite:///{path}"
    assert current_revision(url) is None
    store = SQLiteStore(path)
    async with store:  # open() migrates to head
        await store.ensure_index_model(b.MODEL, b.DIM)
        await store.create_source(b.source())
        await store.put_credentials(b.SOURCE, b"x")
        doc = b.document("1", code=[("sql", "select 1")])
        parts = b.chunks(doc, ["hello world"])
        await store.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    assert current_revision(url) == head_revision()
    assert TABLES <= _tables(path)

    upgrade(url)  # at head already: a no-op that keeps the data
    async with SQLiteStore(path) as again:
        assert len(await again.keyword_candidates("hello", SearchFilters(), 5)) == 1

    downgrade(url, "base")
    assert current_revision(url) is None
    assert _tables(path) & TABLES == set()

    upgrade(url)
    assert TABLES <= _tables(path)
    async with SQLiteStore(path) as fresh:
        assert await fresh.list_sources() == []
        assert await fresh.get_index_model() is None


def test_migrations_run_from_any_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    upgrade(url)
    assert current_revision(url) == head_revision()
    assert not (elsewhere / "alembic.ini").exists()


def _indexes(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'").fetchall()
    return {r[0] for r in rows}


async def test_a_database_at_the_first_revision_gains_the_later_ones(tmp_path: Path) -> None:
    """Revision 0002 adds the chunk -> page index that filtered keyword search names, 0003 the
    skip records, 0004 the title index: a database holding data at 0001 gains them all when a
    store opens it, and its data stays searchable and findable by title."""
    path = tmp_path / "old.sqlite3"
    url = f"sqlite:///{path}"
    async with SQLiteStore(path) as store:
        await store.ensure_index_model(b.MODEL, b.DIM)
        await store.create_source(b.source())
        doc = b.document("1", space="OPS")
        parts = b.chunks(doc, ["rotate the signing keys"])
        await store.write_page(b.SOURCE, doc, parts, b.vectors(parts))
    downgrade(url, "0001")
    assert "ix_chunks_id_page" not in _indexes(path) and "skipped_pages" not in _tables(path)
    assert "ix_pages_space_title" not in _indexes(path)

    async with SQLiteStore(path) as reopened:  # open() migrates to head
        hits = await reopened.keyword_candidates("signing keys", SearchFilters(spaces=("OPS",)), 5)
        assert len(hits) == 1
        assert await reopened.skipped_versions(b.SOURCE) == {}
        page = await reopened.find_page_by_title(b.SOURCE, "OPS", "DEPLOY GUIDE")
        assert page.key == f"{b.SOURCE}:1"
    assert current_revision(url) == head_revision() == "0004"
    assert {"ix_chunks_id_page", "ix_pages_space_title"} <= _indexes(path)


def test_the_title_lookup_uses_the_title_index(tmp_path: Path) -> None:
    path = tmp_path / "plan.sqlite3"
    upgrade(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:
        plan = " ".join(
            str(row[3])
            for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT id FROM pages p WHERE p.space_key = ? "
                "AND lower(p.title) = lower(?) AND p.is_deleted = 0",
                ("DEV", "Deploy guide"),
            )
        )
    assert "ix_pages_space_title" in plan, plan
