"""Typed records the Confluence client hands to the rest of the system.

They are plain frozen dataclasses: built from REST payloads by the client, read by content/ and
ingest/. Nothing here knows about HTTP or storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

PageType = Literal["page", "blogpost"]
Flavour = Literal["cloud", "datacenter"]


@dataclass(frozen=True, slots=True)
class Ancestor:
    id: str
    title: str


@dataclass(frozen=True, slots=True)
class Space:
    id: str
    key: str
    name: str
    type: str = "global"
    status: str = "current"
    web_url: str = ""
    homepage_id: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One page or blog post. ``body_storage`` is None when listed without bodies."""

    id: str
    space_key: str
    type: PageType
    status: str
    title: str
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    author: str | None
    labels: tuple[str, ...] = ()
    ancestors: tuple[Ancestor, ...] = ()
    web_url: str = ""
    body_storage: str | None = None

    @property
    def parent_id(self) -> str | None:
        return self.ancestors[-1].id if self.ancestors else None


@dataclass(frozen=True, slots=True)
class PageRef:
    """The cheap listing used for deletion checks: id and version, no body."""

    id: str
    version: int
    type: PageType = "page"
    status: str = "current"


@dataclass(frozen=True, slots=True)
class Attachment:
    id: str
    page_id: str
    title: str
    media_type: str
    file_size: int | None
    download_path: str
    version: int = 1


@dataclass(slots=True)
class IdListing:
    """Result of a cheap id listing. ``complete`` is False if it failed or stopped part-way:
    callers must then delete nothing."""

    refs: dict[str, PageRef] = field(default_factory=dict)
    complete: bool = False
    error: str | None = None
