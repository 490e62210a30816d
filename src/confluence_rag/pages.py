"""Stored pages for the surfaces: by key, by any Confluence link, by title; listings; outline.

Assistants and people name a page by whatever they have in hand: the ``page_id`` of a search
hit (``<source id>:<confluence id>``), a bare Confluence id, or a link. Confluence links carry
the page id in the path (``/pages/123/Title``, ``/blog/2024/01/02/123/Title``) or the query
(``viewpage.action?pageId=123``); those resolve by id through the store. Data Center's
``/display/KEY/Title`` (and ``/display/KEY/2024/01/02/Title`` for blog posts) carry none: they
resolve by space and title (``Store.find_page_by_title``), never by scanning every page.

``outline`` (the heading tree of a page's Markdown) is pure and needs no store.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from confluence_rag.errors import InvalidInput, PageNotFound
from confluence_rag.records import ChunkRow, PageRecord, SourceRecord, page_key
from confluence_rag.search.validation import space_key
from confluence_rag.store import Store

_PATH_ID = re.compile(r"/(?:pages|blog/\d{4}/\d{2}/\d{2})/(\d+)(?:/|$)")
_BARE_ID = re.compile(r"^\d{1,20}$")
_DISPLAY = re.compile(r"/display/([^/]+)/(?:\d{4}/\d{2}/\d{2}/)?([^/]+)/?$")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
_FENCE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")

NOT_FOUND_HINT = "use a page_id from a search result or a page listing"


class SourceLister(Protocol):
    async def list(self) -> list[SourceRecord]: ...


# --- links (pure) -------------------------------------------------------------------------------
def page_id_from_url(url: str) -> str | None:
    """The Confluence page id a link carries, or None (e.g. ``/display/KEY/Title``)."""
    parts = urlsplit(url)
    if match := _PATH_ID.search(parts.path):
        return match.group(1)
    for name in ("pageId", "pageid"):
        values = parse_qs(parts.query).get(name)
        if values and _BARE_ID.match(values[0]):
            return values[0]
    return None


def display_link(url: str) -> tuple[str, str] | None:
    """``(space key, title)`` of a ``/display/KEY/Title`` link, or None for other links."""
    match = _DISPLAY.search(urlsplit(url).path)
    if match is None:
        return None
    # Confluence writes spaces in titles as "+" in these paths; "%20" is seen too.
    space, title = (unquote(part.replace("+", " ")).strip() for part in match.groups())
    return (space_key(space), title) if space and title else None


def _site_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), str(parts.port or "")


# --- outline (pure) -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Heading:
    """One heading of a page and the headings under it."""

    level: int
    title: str
    children: tuple[Heading, ...] = field(default=())


def outline(markdown: str) -> list[Heading]:
    """The heading tree of ``markdown`` (ATX headings, not those inside fenced code).

    A heading nests under the nearest earlier heading of a smaller level, so a page that jumps
    from ``#`` to ``###`` still gets a tree, not a flat list.
    """
    flat: list[tuple[int, str]] = []
    fence: str | None = None
    for line in markdown.splitlines():
        if opened := _FENCE.match(line):
            marker = opened.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            continue
        if fence is None and (match := _HEADING.match(line)):
            flat.append((len(match.group(1)), match.group(2)))
    return _nest(flat)


def _nest(flat: list[tuple[int, str]]) -> list[Heading]:
    roots: list[Heading] = []
    position = 0

    def children_of(level: int) -> list[Heading]:
        nonlocal position
        found: list[Heading] = []
        while position < len(flat) and flat[position][0] > level:
            own_level, title = flat[position]
            position += 1
            found.append(Heading(own_level, title, tuple(children_of(own_level))))
        return found

    while position < len(flat):
        roots.extend(children_of(0))
    return roots


# --- the service --------------------------------------------------------------------------------
class PageService:
    """Pages as the surfaces read them. ``sources`` lists the indexed sources (for links).

    (``builtins.list`` in annotations: the ``list`` method shadows the builtin in this class.)
    """

    def __init__(self, store: Store, sources: SourceLister) -> None:
        self._store = store
        self._sources = sources

    async def get(self, key: str) -> PageRecord:
        """The page with this key (live or deleted, with its Markdown); ``PageNotFound``;
        ``InvalidInput`` if ``key`` is not a page key."""
        return await self._store.get_page(key)

    async def chunks(self, key: str) -> builtins.list[ChunkRow]:
        """A live page's chunks in reading order, as search sees them."""
        return await self._store.page_chunks(key)

    async def list(
        self, source_id: str, space: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> builtins.list[PageRecord]:
        """Live pages of a source by title (without Markdown); ``SourceNotFound``."""
        return await self._store.list_pages(source_id, space=space, limit=limit, offset=offset)

    async def count(self, source_id: str, space: str | None = None) -> int:
        """Live pages of a source (the total ``list`` pages through)."""
        return await self._store.count_pages(source_id, space=space)

    async def outline(self, key: str) -> builtins.list[Heading]:
        return outline((await self.get(key)).markdown or "")

    async def by_title(self, title: str, space: str, source_id: str | None = None) -> PageRecord:
        """The live page titled ``title`` (any case) in ``space``; ``PageNotFound``."""
        return await self._store.find_page_by_title(source_id, space_key(space), title.strip())

    async def find(self, page_id: str | None = None, url: str | None = None) -> PageRecord:
        """The page named by ``page_id`` (a page key or a bare Confluence id) or else ``url``."""
        page_id = (page_id or "").strip() or None
        url = (url or "").strip() or None
        if page_id is None and url is None:
            raise InvalidInput(
                "give page_id (from a search result) or url (a Confluence page link)"
            )
        if page_id is None:
            assert url is not None
            return await self.by_url(url)
        if _BARE_ID.match(page_id):
            sources = await self._sources.list()
            keys = [page_key(source.id, page_id) for source in sources]
            return _one(await self._pages(keys), f"page id {page_id!r}")
        if ":" not in page_id:
            raise InvalidInput(
                f"{page_id!r} is not a page id: expected '<source id>:<confluence page id>' "
                "as search results give it, or a numeric Confluence page id"
            )
        return await self.get(page_id)

    async def by_url(self, url: str) -> PageRecord:
        """The page a Confluence link points at, among the sources on that link's site."""
        url = url.strip()
        if urlsplit(url).scheme not in ("http", "https"):
            raise InvalidInput(f"{url!r} is not an http(s) URL of a Confluence page")
        on_site = [s for s in await self._sources.list() if _site_key(s.site_url) == _site_key(url)]
        if not on_site:
            raise PageNotFound(f"no indexed source is on the site of {url}")
        if (confluence_id := page_id_from_url(url)) is not None:
            keys = [page_key(source.id, confluence_id) for source in on_site]
            return _one(await self._pages(keys), f"URL {url}")
        found: builtins.list[PageRecord] = []
        if (named := display_link(url)) is not None:
            space, title = named
            for source in on_site:
                if space not in source.space_keys:
                    continue
                try:
                    found.append(await self._store.find_page_by_title(source.id, space, title))
                except PageNotFound:
                    continue
        return _one(found, f"URL {url}")

    async def _pages(self, keys: builtins.list[str]) -> builtins.list[PageRecord]:
        found = []
        for key in keys:
            try:
                found.append(await self._store.get_page(key))
            except PageNotFound:
                continue
        return found


def _one(found: list[PageRecord], what: str) -> PageRecord:
    if not found:
        raise PageNotFound(f"no indexed page matches {what}; {NOT_FOUND_HINT}")
    if len(found) > 1:
        keys = ", ".join(page.key for page in found)
        raise InvalidInput(f"{what} matches pages of several sources ({keys}); pass one page_id")
    return found[0]
