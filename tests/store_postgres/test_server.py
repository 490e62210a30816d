"""The throwaway server fixture itself: PostgreSQL 16, pgvector, one database per test."""

from __future__ import annotations

import psycopg


def test_server_is_postgres_16_with_pgvector(pg_database_url: str) -> None:
    with psycopg.connect(pg_database_url) as conn:
        version = conn.execute("SHOW server_version_num").fetchone()
        assert version is not None and version[0].startswith("16")
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'vector'"
        ).fetchone()
        assert row is not None
        distance = conn.execute("SELECT '[1,0]'::vector <=> '[0,1]'::vector").fetchone()
        assert distance is not None and abs(distance[0] - 1.0) < 1e-9


def test_each_test_gets_its_own_database(pg_database_url: str, postgres_url: str) -> None:
    with psycopg.connect(pg_database_url) as conn:
        conn.execute("CREATE TABLE marker (x int)")
        conn.commit()
        name = conn.execute("SELECT current_database()").fetchone()
    assert name is not None and name[0].startswith("test_")
    assert pg_database_url != postgres_url
