"""REST JSON -> typed records. Pure: dicts in, frozen dataclasses out.

Cloud and Data Center differ in details this module absorbs: users are ``accountId`` vs
``username``, the media type of an attachment sits in ``extensions`` (Cloud) or ``metadata``
(Data Center), and items inside a ``results`` list carry no ``_links.base`` of their own (the
envelope has it). Whatever the shape, a record that lacks what the rest of the system relies
on (an id, a type, a version number) is an :class:`UnexpectedResponse`, never a silent default.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import httpx

from confluence_rag.confluence.models import Ancestor, Attachment, Page, PageRef, PageType, Space
from confluence_rag.errors import UnexpectedResponse

JSON = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class ListingPage:
    """One response of a paginated listing, as the pagination loop needs it."""

    results: tuple[JSON, ...]
    next_link: str | None
    base: str | None
    start: int | None
    limit: int | None


def parse_listing(payload: object) -> ListingPage:
    """The envelope ``{results, start, limit, size, _links{base, next}}`` of a listing."""
    if not isinstance(payload, Mapping):
        raise UnexpectedResponse(
            f"Confluence answered a listing with {type(payload).__name__}, not a JSON object"
        )
    results = payload.get("results")
    if not isinstance(results, list) or not all(isinstance(item, Mapping) for item in results):
        raise UnexpectedResponse("Confluence answered a listing without a 'results' list")
    links = _mapping(payload.get("_links"))
    next_link = links.get("next")
    base = links.get("base")
    return ListingPage(
        results=tuple(results),
        next_link=next_link if isinstance(next_link, str) and next_link else None,
        base=base if isinstance(base, str) and base else None,
        start=_int_or_none(payload.get("start")),
        limit=_int_or_none(payload.get("limit")),
    )


def item_base(item: JSON, fallback: str | None) -> str | None:
    """The site base an item's relative links hang off.

    Order: the item's own ``_links.base`` (single-content responses), the envelope's base
    (``fallback``, for list items), else what precedes ``/rest/api/`` in ``_links.self``.
    """
    links = _mapping(item.get("_links"))
    own = links.get("base")
    if isinstance(own, str) and own:
        return own.rstrip("/")
    if fallback:
        return fallback.rstrip("/")
    self_link = links.get("self")
    if isinstance(self_link, str) and "/rest/api/" in self_link:
        return self_link.split("/rest/api/", 1)[0].rstrip("/")
    return None


def absolute_url(base: str | None, relative: str | None) -> str:
    """``base`` + a relative ``_links`` path (which starts with ``/`` but is relative to base,
    context path included). Empty when either part is missing."""
    if not relative:
        return ""
    if relative.startswith(("http://", "https://")):
        return relative
    if not base:
        return ""
    return base.rstrip("/") + "/" + relative.lstrip("/")


def resolve_link(base: str, link: str) -> str:
    """A ``_links.next``/``download`` path made absolute: relative to ``base`` (which includes
    the context path, e.g. ``/wiki``), unless it already repeats that context path or is
    absolute."""
    if link.startswith(("http://", "https://")):
        return link
    base = base.rstrip("/")
    context = _path_of(base)
    if context and (link == context or link.startswith(context + "/")):
        return urljoin(base + "/", link)  # urljoin keeps only the origin for "/..."
    return base + "/" + link.lstrip("/")


def parse_datetime(value: object) -> datetime | None:
    """An ISO 8601 timestamp as Confluence writes it (``2023-02-17T09:08:30.734Z`` or
    ``...+01:00``), as an aware datetime; None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def parse_page(item: JSON, *, base: str | None = None, space_key: str | None = None) -> Page:
    """A page or blog post from a v1 content object (search result or ``GET content/{id}``).

    ``base`` is the envelope's ``_links.base`` for list items; ``space_key`` the space that was
    queried, used when ``space`` was not expanded.
    """
    content_id = _required_id(item)
    kind = item.get("type")
    if kind not in ("page", "blogpost"):
        raise UnexpectedResponse(
            f"content {content_id} has type {kind!r}; only pages and blog posts are listed"
        )
    page_type: PageType = "page" if kind == "page" else "blogpost"
    version = _mapping(item.get("version"))
    history = _mapping(item.get("history"))
    number = _version_number(item, content_id)
    created_by = _mapping(history.get("createdBy"))
    author = _display_name(created_by) or _display_name(_mapping(version.get("by")))
    updated_at = parse_datetime(version.get("when")) or parse_datetime(
        _mapping(history.get("lastUpdated")).get("when")
    )
    link_base = item_base(item, base)
    body = _mapping(_mapping(item.get("body")).get("storage")).get("value")
    return Page(
        id=content_id,
        space_key=_space_key(item) or space_key or "",
        type=page_type,
        status=str(item.get("status") or "current"),
        title=str(item.get("title") or ""),
        version=number,
        created_at=parse_datetime(history.get("createdDate")),
        updated_at=updated_at,
        author=author,
        labels=_labels(item),
        ancestors=_ancestors(item),
        web_url=absolute_url(link_base, _mapping(item.get("_links")).get("webui")),
        body_storage=body if isinstance(body, str) else None,
    )


def parse_page_ref(item: JSON) -> PageRef:
    """The id + version of a listed page (listing expanded with ``version`` only)."""
    content_id = _required_id(item)
    kind = item.get("type")
    page_type: PageType = "blogpost" if kind == "blogpost" else "page"
    return PageRef(
        id=content_id,
        version=_version_number(item, content_id),
        type=page_type,
        status=str(item.get("status") or "current"),
    )


def parse_space(item: JSON, *, base: str | None = None) -> Space:
    """A space from ``GET space/{key}`` (v1; ``homepage`` expanded or in ``_expandable``)."""
    key = item.get("key")
    if not isinstance(key, str) or not key:
        raise UnexpectedResponse("Confluence answered a space without a key")
    homepage = item.get("homepage")
    homepage_id: str | None = None
    if isinstance(homepage, Mapping) and homepage.get("id") is not None:
        homepage_id = str(homepage["id"])
    else:
        expandable = _mapping(item.get("_expandable")).get("homepage")
        if isinstance(expandable, str) and expandable.rstrip("/").split("/")[-1].isdigit():
            homepage_id = expandable.rstrip("/").split("/")[-1]
    return Space(
        id=str(item.get("id") or ""),
        key=key,
        name=str(item.get("name") or key),
        type=str(item.get("type") or "global"),
        status=str(item.get("status") or "current"),
        web_url=absolute_url(item_base(item, base), _mapping(item.get("_links")).get("webui")),
        homepage_id=homepage_id,
    )


def parse_attachment(item: JSON, *, page_id: str) -> Attachment:
    """An attachment from ``content/{id}/child/attachment``. ``download_path`` is the
    ``_links.download`` path, relative to the site base."""
    attachment_id = _required_id(item)
    extensions = _mapping(item.get("extensions"))
    metadata = _mapping(item.get("metadata"))
    media_type = extensions.get("mediaType") or metadata.get("mediaType") or ""
    size = _int_or_none(extensions.get("fileSize"))
    download = _mapping(item.get("_links")).get("download")
    if not isinstance(download, str) or not download:
        raise UnexpectedResponse(f"attachment {attachment_id} has no download link")
    version = _mapping(item.get("version")).get("number")
    return Attachment(
        id=attachment_id,
        page_id=page_id,
        title=str(item.get("title") or ""),
        media_type=str(media_type),
        file_size=size,
        download_path=download,
        version=version if isinstance(version, int) and version > 0 else 1,
    )


def parse_user_name(item: JSON) -> str | None:
    """The name a reader sees for a user object (``displayName``, else ``publicName``, which
    Cloud always fills), or None for the anonymous user or a nameless answer. Not the username:
    that is an id, and a mention already falls back to it."""
    if not isinstance(item, Mapping) or item.get("type") == "anonymous":
        return None
    for key in ("displayName", "publicName"):
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return None


# ---------------------------------------------------------------- helpers


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "").lower()


def not_an_api(response: httpx.Response) -> bool:
    """A 404 that comes from no REST resource at all (a web server's HTML page, or Jersey's
    "null for uri" when the path misses every resource) rather than from Confluence saying
    "no such space": the URL or context path is wrong."""
    return not _is_json(response) or server_message(response).startswith("null for uri")


def server_message(response: httpx.Response) -> str:
    """The ``message`` of a Confluence error body, else the start of the body, else the status."""
    text = ""
    if _is_json(response):
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, Mapping):
            text = str(body.get("message") or "")
    if not text:
        text = response.text.strip()[:200] if response.text else ""
    return text[:300] or f"HTTP {response.status_code}"


def _mapping(value: object) -> JSON:
    return value if isinstance(value, Mapping) else {}


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _required_id(item: JSON) -> str:
    value = item.get("id")
    if isinstance(value, bool) or not isinstance(value, str | int) or str(value) == "":
        raise UnexpectedResponse("Confluence returned content without an id")
    return str(value)


def _version_number(item: JSON, content_id: str) -> int:
    number = _mapping(item.get("version")).get("number")
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise UnexpectedResponse(
            f"content {content_id} came without a version number (was 'version' expanded?)"
        )
    return number


def _display_name(user: JSON) -> str | None:
    for key in ("displayName", "publicName", "username"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _space_key(item: JSON) -> str | None:
    space = _mapping(item.get("space"))
    key = space.get("key")
    if isinstance(key, str) and key:
        return key
    # not expanded: "_expandable": {"space": "/rest/api/space/KEY"}
    expandable = _mapping(item.get("_expandable"))
    for name in ("space", "container"):
        link = expandable.get(name)
        if isinstance(link, str) and "/rest/api/space/" in link:
            return link.rsplit("/rest/api/space/", 1)[1].split("/")[0] or None
    return None


def _labels(item: JSON) -> tuple[str, ...]:
    results = _mapping(_mapping(item.get("metadata")).get("labels")).get("results")
    if not isinstance(results, list):
        return ()
    names: list[str] = []
    for label in results:
        name = _mapping(label).get("name")
        if isinstance(name, str) and name and name not in names:
            names.append(name)
    return tuple(names)


def _ancestors(item: JSON) -> tuple[Ancestor, ...]:
    ancestors = item.get("ancestors")
    if not isinstance(ancestors, list):
        return ()
    chain: list[Ancestor] = []
    for ancestor in ancestors:
        data = _mapping(ancestor)
        if data.get("id") is None:
            continue
        chain.append(Ancestor(id=str(data["id"]), title=str(data.get("title") or "")))
    return tuple(chain)


def _path_of(url: str) -> str:
    after_scheme = url.split("://", 1)[-1]
    slash = after_scheme.find("/")
    return "" if slash < 0 else after_scheme[slash:].rstrip("/")
