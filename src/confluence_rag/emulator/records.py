"""The emulator's own in-memory records: users, spaces, content and attachments.

They hold what Confluence stores, not what it returns: `shapes.py` turns them into the JSON the
REST API answers with, so one record can be rendered for Cloud or Data Center, v1 or v2.
Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

ContentType = Literal["page", "blogpost"]
ContentStatus = Literal["current", "trashed", "archived", "draft"]


@dataclass(slots=True)
class User:
    """A Confluence user. Cloud identifies users by ``account_id``, Data Center by
    ``username``/``user_key``; both are kept so one corpus serves both flavours."""

    account_id: str
    display_name: str
    email: str
    username: str
    user_key: str


@dataclass(slots=True)
class SpaceRecord:
    id: int
    key: str
    name: str
    type: str = "global"
    status: str = "current"
    description: str = ""
    homepage_id: str | None = None
    created_at: datetime | None = None
    author_id: str | None = None


@dataclass(slots=True)
class AttachmentRecord:
    id: str  # "att" + digits, as Confluence does
    container_id: str
    title: str  # the file name
    media_type: str
    data: bytes
    created_at: datetime
    author_id: str
    version: int = 1
    comment: str = ""
    status: str = "current"


@dataclass(slots=True)
class ContentRecord:
    """A page or blog post at its current version.

    ``parent_id`` is the only tree link stored; ancestors are derived from it, so moving a page
    moves its whole subtree. ``marker`` is a unique phrase the generator placed inside one of the
    page's code blocks (None when the page has no code), so search tests can aim at one page.
    """

    id: str
    type: ContentType
    status: ContentStatus
    title: str
    space_key: str
    body: str
    created_at: datetime
    created_by: str  # account id
    updated_at: datetime
    updated_by: str  # account id
    version: int = 1
    minor_edit: bool = False
    version_message: str = ""
    parent_id: str | None = None
    labels: list[str] = field(default_factory=list)
    position: int = 0
    marker: str | None = None
    # where a trashed page hung before it went to the trash, so a restore can put it back
    trashed_from_parent: str | None = None
