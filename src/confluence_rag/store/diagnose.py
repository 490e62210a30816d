"""Look at a store without changing it: ``diagnose(settings) -> StoreDiagnosis``.

``confluence-rag doctor`` asks this instead of speaking SQL itself. Unlike ``open()``, nothing
here migrates, creates or repairs: a SQLite file is opened read-only (a missing one is reported,
not created) and a PostgreSQL database is only connected to and read. So a damaged database is
left exactly as it was found, for a backup or a post-mortem.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from pathlib import Path

from confluence_rag.errors import ConfluenceRagError
from confluence_rag.records import StoreDiagnosis
from confluence_rag.settings import Settings
from confluence_rag.store.migrate import current_revision, head_revision

#: Integrity problems reported at most (SQLite's integrity_check stops there).
MAX_PROBLEMS = 20


def diagnose(settings: Settings) -> StoreDiagnosis:
    """The state of the store ``settings`` select (``ConfigurationError`` for a bad URL)."""
    if settings.backend == "postgres":
        return _diagnose_postgres((settings.database_url or "").strip())
    return _diagnose_sqlite(settings.sqlite_path)


def _diagnose_sqlite(path: Path) -> StoreDiagnosis:
    head = head_revision()
    base = partial(StoreDiagnosis, backend="sqlite", location=str(path), head_revision=head)
    if not path.exists():
        return base(exists=False, connected=False)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error as error:
        return base(exists=True, connected=False, error=str(error))
    try:
        found = [str(row[0]) for row in conn.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})")]
        mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        revision = _sqlite_revision(conn)
    except sqlite3.Error as error:
        return base(exists=True, connected=True, error=str(error))
    finally:
        conn.close()
    return base(
        exists=True,
        connected=True,
        problems=() if found == ["ok"] else tuple(found),
        schema_revision=revision,
        details={"journal_mode": mode},
    )


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:  # no such table: never migrated
        return None
    return str(row[0]) if row else None


def _diagnose_postgres(url: str) -> StoreDiagnosis:
    from confluence_rag.store.postgres import redacted, sqlalchemy_url

    head = head_revision()
    location = redacted(url)
    try:
        revision = current_revision(sqlalchemy_url(url))
    except ConfluenceRagError as error:
        return StoreDiagnosis(
            backend="postgres",
            location=location,
            exists=True,
            connected=False,
            error=error.message,
            head_revision=head,
        )
    return StoreDiagnosis(
        backend="postgres",
        location=location,
        exists=True,
        connected=True,
        schema_revision=revision,
        head_revision=head,
    )
