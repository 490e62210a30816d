"""Initial schema: sources, credentials, pages, labels, chunks, code examples, jobs, index meta.

The tables are written with portable SQLAlchemy types so PostgreSQL runs the same revision.
Search structures are dialect-specific and live in the dialect branches below: SQLite gets FTS5
tables; PostgreSQL (added by the Postgres work in this same revision chain) gets its own.

Times are UTC. On SQLite the store writes them as fixed-width ISO-8601 text, so text order is
time order and ``updated_after`` filters compare correctly.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# SQLite only aliases the rowid for exactly "INTEGER PRIMARY KEY"; PostgreSQL wants 64 bits.
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.Text().with_variant(postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name

    op.create_table(
        "sources",
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("title", sa.Text(), nullable=False, server_default=""),
        sa.Column("site_url", sa.Text(), nullable=False),
        sa.Column("flavour", sa.Text(), nullable=False),
        sa.Column("space_keys", _JSON, nullable=False),
        sa.Column("space_names", _JSON, nullable=False),
        sa.Column("user_email", sa.Text()),
        sa.Column("auth_kind", sa.Text(), nullable=False),
        sa.Column("knowledge_type", sa.Text(), nullable=False),
        sa.Column("tags", _JSON, nullable=False),
        sa.Column("page_types", _JSON, nullable=False),
        sa.Column("skip_rules", _JSON, nullable=False),
        sa.Column("max_pages", sa.Integer()),
        sa.Column("sync_frequency_hours", sa.Float(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("last_sync_at", _TIME),
        sa.Column("sync_status", sa.Text(), nullable=False, server_default="active"),
        sa.Column("sync_error", sa.Text()),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )

    op.create_table(
        "credentials",
        sa.Column(
            "source_id",
            sa.Text(),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", _TIME, nullable=False),
    )

    op.create_table(
        "pages",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column(
            "source_id",
            sa.Text(),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("confluence_page_id", sa.Text(), nullable=False),
        sa.Column("space_key", sa.Text(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("confluence_version", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("breadcrumb", sa.Text(), nullable=False),
        sa.Column("ancestors", _JSON, nullable=False),
        sa.Column("labels", _JSON, nullable=False),
        sa.Column("author", sa.Text()),
        sa.Column("created_at", _TIME),
        sa.Column("updated_at", _TIME),
        sa.Column("is_deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("deleted_at", _TIME),
        sa.Column("indexed_at", _TIME, nullable=False),
        # Last on purpose: SQLite reads a row's columns in order, so a page body (often tens
        # of KB, in overflow pages) placed before is_deleted would be read on every lookup.
        sa.Column("markdown", sa.Text(), nullable=False),
        sa.UniqueConstraint("source_id", "confluence_page_id", name="uq_pages_source_page"),
    )
    op.create_index("ix_pages_source_space", "pages", ["source_id", "space_key"])
    op.create_index("ix_pages_deleted", "pages", ["is_deleted", "deleted_at"])
    op.create_index("ix_pages_updated", "pages", ["updated_at"])

    op.create_table(
        "page_labels",
        sa.Column("page_id", _ID, sa.ForeignKey("pages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("label", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("page_id", "label", name="pk_page_labels"),
    )
    op.create_index("ix_page_labels_label", "page_labels", ["label"])

    op.create_table(
        "chunks",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("page_id", _ID, sa.ForeignKey("pages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("heading_path", _JSON, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_hash", sa.Text(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("embedding", sa.LargeBinary(), nullable=False),  # float32, little-endian
        # index_meta.generation when the chunk became live: lets another process's in-memory
        # vector matrix load only what changed since it last looked.
        sa.Column("gen", sa.BigInteger(), nullable=False, server_default="0"),
    )
    op.create_index("ix_chunks_page", "chunks", ["page_id", "ordinal"])
    op.create_index("ix_chunks_hash", "chunks", ["content_hash"])
    op.create_index("ix_chunks_gen", "chunks", ["gen"])

    op.create_table(
        "code_examples",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("page_id", _ID, sa.ForeignKey("pages.id", ondelete="CASCADE"), nullable=False),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("language", sa.Text(), nullable=False),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("heading_path", _JSON, nullable=False),
        sa.Column("caption", sa.Text(), nullable=False, server_default=""),
    )
    op.create_index("ix_code_page", "code_examples", ["page_id", "ordinal"])
    op.create_index("ix_code_language", "code_examples", ["language"])

    op.create_table(
        "jobs",
        sa.Column("id", sa.Text(), primary_key=True),
        # No foreign key: a job's history outlives its source (delete_source cancels active
        # jobs and keeps the rows, so a client polling a progress id still gets an answer).
        sa.Column("source_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("stage", sa.Text(), nullable=False),
        sa.Column("percent", sa.Float(), nullable=False, server_default="0"),
        sa.Column("counters", _JSON, nullable=False),
        sa.Column("log", _JSON, nullable=False),
        sa.Column("error", sa.Text()),
        sa.Column("checkpoint", _JSON, nullable=False),
        sa.Column("result", _JSON, nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("heartbeat_at", _TIME),
        sa.Column("lease_owner", sa.Text()),
        sa.Column("lease_expires_at", _TIME),
        sa.Column("created_at", _TIME, nullable=False),
        sa.Column("started_at", _TIME),
        sa.Column("finished_at", _TIME),
        sa.Column("updated_at", _TIME, nullable=False),
    )
    op.create_index("ix_jobs_source_status", "jobs", ["source_id", "status"])
    op.create_index("ix_jobs_status", "jobs", ["status", "created_at"])

    op.create_table(
        "index_meta",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("model_id", sa.Text()),
        sa.Column("dimension", sa.Integer()),
        # Bumped by every transaction that changes which chunks are live; a process compares
        # it with the generation its in-memory vectors reflect.
        sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"),
        sa.Column("updated_at", _TIME),
        sa.CheckConstraint("id = 1", name="ck_index_meta_single_row"),
    )
    op.execute("INSERT INTO index_meta (id, generation) VALUES (1, 0)")

    if dialect == "sqlite":
        # Regular (content-storing) FTS5 tables keyed by chunk / code id: deleting a row by
        # rowid is always safe, unlike contentless tables that need the exact old values.
        # Only chunks of live pages have rows here.
        op.execute(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5("
            "title, heading, text, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE VIRTUAL TABLE code_fts USING fts5("
            "code, context, tokenize = 'porter unicode61 remove_diacritics 2')"
        )
    elif dialect == "postgresql":
        from confluence_rag.store.postgres_schema import upgrade_0001

        upgrade_0001(op)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute("DROP TABLE IF EXISTS code_fts")
        op.execute("DROP TABLE IF EXISTS chunks_fts")
    op.drop_table("index_meta")
    op.drop_index("ix_jobs_status", table_name="jobs")
    op.drop_index("ix_jobs_source_status", table_name="jobs")
    op.drop_table("jobs")
    op.drop_index("ix_code_language", table_name="code_examples")
    op.drop_index("ix_code_page", table_name="code_examples")
    op.drop_table("code_examples")
    op.drop_index("ix_chunks_gen", table_name="chunks")
    op.drop_index("ix_chunks_hash", table_name="chunks")
    op.drop_index("ix_chunks_page", table_name="chunks")
    op.drop_table("chunks")
    op.drop_index("ix_page_labels_label", table_name="page_labels")
    op.drop_table("page_labels")
    op.drop_index("ix_pages_updated", table_name="pages")
    op.drop_index("ix_pages_deleted", table_name="pages")
    op.drop_index("ix_pages_source_space", table_name="pages")
    op.drop_table("pages")
    op.drop_table("credentials")
    op.drop_table("sources")
