"""Pages by title: an index on ``(space_key, lower(title))`` for ``Store.find_page_by_title``.

A link to a page names its space and title (``[[DEV:Release checklist]]``); resolving it looks
the page up case-insensitively, which without this index reads every page of the space. Both
backends support expression indexes, so one revision serves both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_pages_space_title", "pages", ["space_key", sa.text("lower(title)")])


def downgrade() -> None:
    op.drop_index("ix_pages_space_title", table_name="pages")
