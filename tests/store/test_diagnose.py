"""``store.diagnose``: what a store looks like, found without migrating, creating or repairing."""

from __future__ import annotations

import pytest

from confluence_rag.settings import Settings
from confluence_rag.store import diagnose
from confluence_rag.store.migrate import downgrade, head_revision, upgrade
from confluence_rag.store.postgres import PostgresStore


def test_a_missing_sqlite_file_is_reported_and_not_created(settings: Settings) -> None:
    found = diagnose(settings)
    assert (found.backend, found.exists, found.connected) == ("sqlite", False, False)
    assert found.location == str(settings.sqlite_path) and not settings.sqlite_path.exists()


def test_a_sqlite_file_below_head_is_reported_as_it_is(settings: Settings) -> None:
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{settings.sqlite_path}"
    upgrade(url)
    at_head = diagnose(settings)
    assert at_head.healthy and at_head.at_head and at_head.schema_revision == head_revision()
    assert at_head.details["journal_mode"] in ("delete", "wal")
    downgrade(url, "0003")
    older = diagnose(settings)
    assert older.healthy and not older.at_head and older.schema_revision == "0003"
    assert diagnose(settings).schema_revision == "0003"  # looking did not migrate it


def test_a_file_that_is_not_a_database_is_an_error(settings: Settings) -> None:
    settings.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
    settings.sqlite_path.write_bytes(b"not a database at all" * 500)
    found = diagnose(settings)
    assert found.exists and not found.healthy and found.error
    assert settings.sqlite_path.read_bytes() == b"not a database at all" * 500


@pytest.mark.anyio
async def test_postgres_reachable_then_migrated(settings: Settings, pg_database_url: str) -> None:
    pg = settings.model_copy(update={"database_url": pg_database_url})
    fresh = diagnose(pg)
    assert (fresh.backend, fresh.connected, fresh.schema_revision) == ("postgres", True, None)
    assert fresh.location == pg_database_url.replace("postgresql+psycopg://", "postgresql://")
    async with PostgresStore(pg_database_url):
        pass
    assert diagnose(pg).at_head


def test_an_unreachable_postgres_is_not_connected(settings: Settings) -> None:
    down = settings.model_copy(update={"database_url": "postgresql://u:secret@127.0.0.1:9/x"})
    found = diagnose(down)
    assert not found.connected and found.error
    assert found.location == "postgresql://u:***@127.0.0.1:9/x"  # the password never shows
