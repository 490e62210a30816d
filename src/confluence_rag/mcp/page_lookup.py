"""Find a stored page from what an assistant has in hand: a page key, a bare id, or a URL.

Assistants copy whatever they saw: the ``page_id`` of a search hit (``<source id>:<id>``), the
bare Confluence id from a link, or the link itself. Confluence links carry the page id in the
path (``/pages/123/Title``, ``/blog/2024/01/02/123/Title``) or the query
(``viewpage.action?pageId=123``); Data Center's ``/display/KEY/Title`` links carry none, so those
are matched against stored page URLs of the sources on that site.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, unquote, urlsplit

from confluence_rag.errors import InvalidInput, PageNotFound
from confluence_rag.records import PageRecord, SourceRecord, page_key
from confluence_rag.store.base import Store

_PATH_ID = re.compile(r"/(?:pages|blog/\d{4}/\d{2}/\d{2})/(\d+)(?:/|$)")
_BARE_ID = re.compile(r"^\d{1,20}$")
# Pages read per batch when a URL has no id and stored URLs must be compared.
_SCAN_BATCH = 500


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


def _site_key(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return (parts.hostname or "").lower(), str(parts.port or "")


def _same_url(a: str, b: str) -> bool:
    pa, pb = urlsplit(a), urlsplit(b)
    return (
        _site_key(a) == _site_key(b)
        and unquote(pa.path).replace("+", " ").rstrip("/")
        == unquote(pb.path).replace("+", " ").rstrip("/")
        and pa.query == pb.query
    )


async def _first_of(store: Store, keys: list[str]) -> list[PageRecord]:
    found = []
    for key in keys:
        try:
            found.append(await store.get_page(key))
        except PageNotFound:
            continue
    return found


def _one(found: list[PageRecord], what: str) -> PageRecord:
    if not found:
        raise PageNotFound(
            f"no indexed page matches {what}; use a page_id from rag_search_knowledge_base or "
            "rag_list_pages_for_source"
        )
    if len(found) > 1:
        keys = ", ".join(page.key for page in found)
        raise InvalidInput(f"{what} matches pages of several sources ({keys}); pass one page_id")
    return found[0]


async def find_page(
    store: Store, sources: list[SourceRecord], page_id: str | None, url: str | None
) -> PageRecord:
    """The page named by ``page_id`` (key or bare id) or else by ``url``."""
    page_id = (page_id or "").strip() or None
    url = (url or "").strip() or None
    if page_id is None and url is None:
        raise InvalidInput("give page_id (from a search result) or url (a Confluence page link)")
    if page_id is not None:
        if _BARE_ID.match(page_id):
            keys = [page_key(source.id, page_id) for source in sources]
            return _one(await _first_of(store, keys), f"page id {page_id!r}")
        if ":" not in page_id:
            raise InvalidInput(
                f"{page_id!r} is not a page id: expected '<source id>:<confluence page id>' "
                "as search results give it, or a numeric Confluence page id"
            )
        return await store.get_page(page_id)
    assert url is not None
    if urlsplit(url).scheme not in ("http", "https"):
        raise InvalidInput(f"{url!r} is not an http(s) URL of a Confluence page")
    on_site = [s for s in sources if _site_key(s.site_url) == _site_key(url)]
    if not on_site:
        raise PageNotFound(f"no indexed source is on the site of {url}")
    if (confluence_id := page_id_from_url(url)) is not None:
        keys = [page_key(source.id, confluence_id) for source in on_site]
        return _one(await _first_of(store, keys), f"URL {url}")
    matches: list[PageRecord] = []
    for source in on_site:
        offset = 0
        while batch := await store.list_pages(
            source.id, limit=_SCAN_BATCH, offset=offset, include_deleted=True
        ):
            matches.extend(page for page in batch if _same_url(page.url, url))
            offset += len(batch)
    return _one(await _first_of(store, [page.key for page in matches]), f"URL {url}")
