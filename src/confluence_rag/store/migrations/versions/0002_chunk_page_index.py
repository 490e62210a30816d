"""SQLite: a covering index from a chunk's id to its page, for filtered keyword search.

A filtered keyword search joins every FTS5 match to its chunk's page. Looked up through the
chunks table itself, each match reads a leaf of that table, whose rows carry the text and the
embedding; through this index (a few bytes a row) the same join took 11.7 instead of 20.1 ms
at 100k chunks (``docs/benchmarks.md``). PostgreSQL keeps its full-text columns on the chunk
row, so it needs no such index.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.create_index("ix_chunks_id_page", "chunks", ["id", "page_id"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index("ix_chunks_id_page", table_name="chunks")
