"""Alembic migrations shared by SQLite and PostgreSQL (dialect branches inside revisions)."""
