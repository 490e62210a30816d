"""Run the Alembic migrations from code: no alembic.ini, works from any working directory.

    upgrade("sqlite:////path/to/index.sqlite3")           # to head
    downgrade("sqlite:////path/to/index.sqlite3", "base")

The same revision chain serves SQLite and PostgreSQL; revisions branch on the dialect where the
two differ. Synchronous (Alembic is): async callers run these in a thread.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.exc import SQLAlchemyError

from confluence_rag.errors import StorageFull, StoreError
from confluence_rag.store.sqlite_conn import is_disk_full

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # "%" is ConfigParser interpolation syntax: a password containing it must be escaped.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``; ``StoreError`` if that fails.

    Every store runs this as it opens, so it is where a SQLite file on a full disk is met first:
    that is ``StorageFull`` with a plain message, not a driver error."""
    try:
        command.upgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        if is_disk_full(getattr(exc, "orig", None) or exc):
            raise StorageFull(
                "the disk is full: the database cannot be opened until some space is freed "
                f"where it lives ({url.removeprefix('sqlite:///')})"
            ) from exc
        raise StoreError(f"database migration to {revision} failed: {exc}") from exc


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"`` drops everything)."""
    try:
        command.downgrade(alembic_config(url), revision)
    except SQLAlchemyError as exc:
        raise StoreError(f"database migration to {revision} failed: {exc}") from exc


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    if head is None:
        raise StoreError("no migrations found")
    return head


def current_revision(url: str) -> str | None:
    """The revision the database at ``url`` is at (``None``: never migrated)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the schema revision: {exc}") from exc
    finally:
        engine.dispose()
