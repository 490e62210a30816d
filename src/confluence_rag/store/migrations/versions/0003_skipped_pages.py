"""Skipped pages: the version of each page the skip rules left out, and under which rules.

A page the rules skip (near-empty, archived, a draft) has no row in ``pages``, so every sync saw
it as new and fetched and converted it again. With the version it was skipped at, and the rules
it was judged by (``content/metadata.skip_rules_key``: the rule settings and the code version),
a sync passes over it until it changes or the rules do.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "skipped_pages",
        sa.Column(
            "source_id",
            sa.Text(),
            sa.ForeignKey("sources.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("confluence_page_id", sa.Text(), nullable=False),
        sa.Column("confluence_version", sa.Integer(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("skipped_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source_id", "confluence_page_id"),
    )


def downgrade() -> None:
    op.drop_table("skipped_pages")
