"""v1 read endpoints: spaces, content listing and by id, CQL search (content/search and search),
children, attachments and their bytes, labels, the current user, other users by id."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from confluence_rag.emulator import cql_eval
from confluence_rag.emulator.config import DEFAULT_LIMIT
from confluence_rag.emulator.context import (
    json_response,
    readable_content,
    readable_space,
    render_for,
    state_of,
    user_of,
)
from confluence_rag.emulator.cql import CqlError, parse
from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.pagination import (
    decode_cursor,
    encode_cursor,
    int_param,
    link,
    position_after,
)
from confluence_rag.emulator.records import ContentRecord, User
from confluence_rag.emulator.shapes import (
    attachment_json,
    content_json,
    envelope,
    expand_list,
    expand_tree,
    label_json,
    search_result_json,
    space_json,
    user_json,
)


def _limit(request: Request, expand: list[str]) -> int:
    """The requested limit, silently capped as the server does for these expansions."""
    requested = int_param(request.query_params, "limit", DEFAULT_LIMIT)
    cap = state_of(request).config.limit_caps.cap_for(expand)
    return max(1, min(requested, cap)) if requested else min(DEFAULT_LIMIT, cap)


def _start(request: Request, *, offset_limited: bool) -> int:
    start = int_param(request.query_params, "start", 0)
    config = state_of(request).config
    if offset_limited and config.flavour == "cloud" and start > config.max_start:
        raise ConfluenceApiError(
            400, f"The start parameter must be less than or equal to {config.max_start}. "
            "Use the cursor in _links.next to page further."
        )  # fmt: skip
    return start


async def spaces(request: Request) -> Response:
    r = render_for(request)
    state = r.state
    user = user_of(request)
    keys = set(request.query_params.getlist("spaceKey"))
    found = [
        s
        for s in state.spaces.values()
        if state.can_read(user, s.key) and (not keys or s.key in keys)
    ]
    start = int_param(request.query_params, "start", 0)
    limit = max(1, min(int_param(request.query_params, "limit", DEFAULT_LIMIT), 500))
    page = found[start : start + limit]
    tree = expand_tree(request.query_params.get("expand"))
    next_link = None
    if start + limit < len(found):
        params = {"next": "true", "limit": limit, "start": start + limit,
                  "expand": request.query_params.get("expand")}  # fmt: skip
        next_link = link("/rest/api/space", params)
    results = [space_json(s, tree, r) for s in page]
    return json_response(envelope(results, start, limit, r, "/rest/api/space", next_link))


async def space(request: Request) -> Response:
    found = readable_space(request, request.path_params["key"])
    tree = expand_tree(request.query_params.get("expand"))
    return json_response(space_json(found, tree, render_for(request)))


async def content_list(request: Request) -> Response:
    """GET /rest/api/content: by spaceKey/type/title/status, offset paging on both flavours."""
    r = render_for(request)
    params = request.query_params
    user = user_of(request)
    expand = expand_list(params.get("expand"))
    limit = _limit(request, expand)
    start = _start(request, offset_limited=True)
    ctype = params.get("type", "page")
    statuses = set((params.get("status") or "current").split(","))
    key = params.get("spaceKey")
    if key is not None:
        readable_space(request, key)
    title = params.get("title")
    with_state = r.state
    found = sorted(
        (
            c
            for c in list(with_state.contents.values())
            if c.type == ctype
            and ("any" in statuses or c.status in statuses)
            and (key is None or c.space_key == key)
            and (title is None or c.title == title)
            and with_state.can_read(user, c.space_key)
        ),
        key=lambda c: int(c.id) if c.id.isdigit() else 0,
    )
    page = found[start : start + limit]
    next_link = None
    if start + limit < len(found):
        keep = {k: v for k, v in params.items() if k not in ("start", "limit")}
        next_link = link("/rest/api/content", {**keep, "limit": limit, "start": start + limit})
    tree = expand_tree(params.get("expand"))
    results = [content_json(c, tree, r) for c in page]
    return json_response(envelope(results, start, limit, r, "/rest/api/content", next_link))


def _run_cql(request: Request) -> tuple[str, list[ContentRecord], cql_eval.SortKey]:
    query_text = request.query_params.get("cql")
    if not query_text:
        raise ConfluenceApiError(400, "The cql parameter is required")
    try:
        query = parse(query_text)
        matches = state_of(request).search(query_text, user_of(request))
    except CqlError as error:
        raise ConfluenceApiError(
            400,
            "com.atlassian.confluence.api.service.exceptions.BadRequestException: "
            f"Could not parse cql : {query_text} ({error.detail})",
        ) from None
    return query_text, matches, cql_eval.sort_key_function(query.order)


def _search_page(
    request: Request, path: str, expand: list[str]
) -> tuple[list[ContentRecord], int, int, str | None, int, str]:
    """One page of a CQL search and its next link: cursor on Cloud, start on Data Center."""
    query_text, matches, sort_key = _run_cql(request)
    params = request.query_params
    limit = _limit(request, expand)
    cursor = params.get("cursor")
    cloud = state_of(request).config.flavour == "cloud"
    if cursor:
        position = position_after(matches, decode_cursor(cursor), sort_key)
        start = position
    else:
        start = _start(request, offset_limited=True)
        position = start
    page = matches[position : position + limit]
    next_link = None
    if page and position + limit < len(matches):
        next_params: dict[str, Any] = {}
        if cloud:
            next_params = {"next": "true", "cursor": encode_cursor(sort_key(page[-1]))}
        next_params.update(
            {"expand": params.get("expand"), "limit": limit, "start": position + limit,
             "cql": query_text}
        )  # fmt: skip
        if params.get("cqlcontext"):
            next_params["cqlcontext"] = params.get("cqlcontext")
        next_link = link(path, next_params)
    return page, start, limit, next_link, len(matches), query_text


async def content_search(request: Request) -> Response:
    r = render_for(request)
    expand = expand_list(request.query_params.get("expand"))
    path = "/rest/api/content/search"
    page, start, limit, next_link, _, _ = _search_page(request, path, expand)
    tree = expand_tree(request.query_params.get("expand"))
    results = [content_json(c, tree, r) for c in page]
    return json_response(envelope(results, start, limit, r, path, next_link))


async def search(request: Request) -> Response:
    """GET /rest/api/search: search results wrapping content; expand applies to ``content``."""
    r = render_for(request)
    raw = expand_list(request.query_params.get("expand"))
    expand = [e.removeprefix("content.") for e in raw]
    path = "/rest/api/search"
    page, start, limit, next_link, total, query_text = _search_page(request, path, expand)
    tree = expand_tree(",".join(expand))
    results = [search_result_json(c, tree, r) for c in page]
    body = envelope(results, start, limit, r, path, next_link)
    body.update({"totalSize": total, "cqlQuery": query_text, "searchDuration": 3})
    body["_links"] = body.pop("_links")  # keep Confluence's key order: _links last
    return json_response(body)


def _statuses(request: Request) -> tuple[str, ...]:
    raw = request.query_params.get("status") or "current"
    return tuple(s.strip() for s in raw.split(",") if s.strip())


async def content_by_id(request: Request) -> Response:
    record = readable_content(request, request.path_params["id"], _statuses(request))
    version = request.query_params.get("version")
    if version is not None and version != str(record.version):
        raise ConfluenceApiError(
            404, f"No content found with id : ContentId{{id={record.id}}} at version {version}"
        )
    # without an expand parameter Confluence expands these three
    tree = expand_tree(request.query_params.get("expand", "space,history,version"))
    return json_response(content_json(record, tree, render_for(request)))


async def content_children(request: Request) -> Response:
    r = render_for(request)
    record = readable_content(request, request.path_params["id"])
    kind = request.path_params["type"]
    if kind not in ("page", "comment", "attachment", "blogpost"):
        raise ConfluenceApiError(400, f"Unknown child content type: {kind}")
    if kind == "attachment":
        return await attachments(request)
    params = request.query_params
    expand = expand_list(params.get("expand"))
    limit = _limit(request, expand)
    start = int_param(params, "start", 0)
    found = r.state.children(record.id) if kind == "page" else []
    page = found[start : start + limit]
    path = f"/rest/api/content/{record.id}/child/{kind}"
    next_link = None
    if start + limit < len(found):
        next_link = link(path, {"expand": params.get("expand"), "limit": limit,
                                "start": start + limit})  # fmt: skip
    tree = expand_tree(params.get("expand"))
    results = [content_json(c, tree, r) for c in page]
    return json_response(envelope(results, start, limit, r, path, next_link))


async def attachments(request: Request) -> Response:
    r = render_for(request)
    record = readable_content(request, request.path_params["id"])
    params = request.query_params
    found = r.state.attachments_of(record.id)
    if params.get("filename"):
        found = [a for a in found if a.title == params.get("filename")]
    if params.get("mediaType"):
        found = [a for a in found if a.media_type == params.get("mediaType")]
    start = int_param(params, "start", 0)
    limit = max(1, min(int_param(params, "limit", 50), 200))
    page = found[start : start + limit]
    path = f"/rest/api/content/{record.id}/child/attachment"
    next_link = None
    if start + limit < len(found):
        next_link = link(path, {"limit": limit, "start": start + limit})
    results = [attachment_json(a, r) for a in page]
    return json_response(envelope(results, start, limit, r, path, next_link))


def _bytes_response(data: bytes, media_type: str, name: str) -> Response:
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(data, media_type=media_type, headers=headers)


async def attachment_download(request: Request) -> Response:
    record = readable_content(request, request.path_params["id"])
    attachment_id = request.path_params["attachment_id"]
    for attachment in state_of(request).attachments_of(record.id):
        if attachment.id == attachment_id:
            return _bytes_response(attachment.data, attachment.media_type, attachment.title)
    raise ConfluenceApiError(404, f"No attachment {attachment_id} on content {record.id}")


async def download(request: Request) -> Response:
    """/download/attachments/{page id}/{file name}: the ``_links.download`` of an attachment."""
    record = readable_content(request, request.path_params["id"])
    name = request.path_params["filename"]
    for attachment in state_of(request).attachments_of(record.id):
        if attachment.title == name:
            return _bytes_response(attachment.data, attachment.media_type, attachment.title)
    raise ConfluenceApiError(404, f"No attachment named {name} on content {record.id}")


async def labels(request: Request) -> Response:
    r = render_for(request)
    record = readable_content(request, request.path_params["id"])
    params = request.query_params
    names = list(record.labels)
    prefix = params.get("prefix")
    if prefix and prefix != "global":
        names = []
    start = int_param(params, "start", 0)
    limit = max(1, min(int_param(params, "limit", 200), 200))
    page = names[start : start + limit]
    path = f"/rest/api/content/{record.id}/label"
    next_link = (
        link(path, {"limit": limit, "start": start + limit}) if start + limit < len(names) else None
    )
    results = [label_json(n) for n in page]
    return json_response(envelope(results, start, limit, r, path, next_link))


async def current_user(request: Request) -> Response:
    return json_response(user_json(user_of(request), render_for(request)))


# Cloud's bulk lookup answers for at most this many account ids and silently drops the rest
# (the 2025 spec says 100; an older one said 200 with a ``limit`` parameter).
BULK_USERS_MAX = 100


def _user_lookup_allowed(request: Request) -> None:
    if not state_of(request).config.user_lookup:
        raise ConfluenceApiError(403, "Not permitted to view user profiles")


def _find_user(request: Request, attribute: str, value: str) -> User | None:
    return next(
        (u for u in state_of(request).users.values() if getattr(u, attribute) == value), None
    )


async def user(request: Request) -> Response:
    """GET /rest/api/user: Cloud by ``accountId`` (username and key are gone there, for privacy);
    Data Center by ``key`` or ``username``. 404 when nobody matches."""
    _user_lookup_allowed(request)
    r = render_for(request)
    params = request.query_params
    if r.cloud:
        account = params.get("accountId")
        if not account:
            raise ConfluenceApiError(400, "accountId is required to look up a user")
        found = r.state.users.get(account)
        missing = f"No user found with accountId : {account}"
    elif params.get("key"):
        found = _find_user(request, "user_key", params["key"])
        missing = f"No user found with key : {params['key']}"
    elif params.get("username"):
        found = _find_user(request, "username", params["username"])
        missing = f"No user found with username : {params['username']}"
    else:
        raise ConfluenceApiError(400, "A username or key must be supplied to look up a user")
    if found is None:
        raise ConfluenceApiError(404, missing)
    return json_response(user_json(found, r))


async def users_bulk(request: Request) -> Response:
    """GET /rest/api/user/bulk (Cloud): ``accountId`` repeated (or comma-separated); the users
    that exist, in request order; unknown ids are simply left out; only the first
    ``BULK_USERS_MAX`` ids are looked at."""
    r = render_for(request)
    if not r.cloud:  # Data Center has no bulk lookup: Jersey's 404 for an unknown resource
        raise HTTPException(404)
    _user_lookup_allowed(request)
    params = request.query_params
    ids = [i.strip() for raw in params.getlist("accountId") for i in raw.split(",") if i.strip()]
    if not ids:
        raise ConfluenceApiError(400, "accountId is required to look up users")
    limit = max(1, min(int_param(params, "limit", BULK_USERS_MAX), BULK_USERS_MAX))
    found = [r.state.users[i] for i in dict.fromkeys(ids[:limit]) if i in r.state.users]
    results = [user_json(u, r) for u in found]
    return json_response(envelope(results, 0, limit, r, "/rest/api/user/bulk"))


ROUTES = [
    Route("/rest/api/space", spaces),
    Route("/rest/api/space/{key}", space),
    Route("/rest/api/content/search", content_search),
    Route("/rest/api/search", search),
    Route("/rest/api/user/current", current_user),
    Route("/rest/api/user", user),
    Route("/rest/api/user/bulk", users_bulk),
    Route("/rest/api/content/{id}/child/attachment", attachments),
    Route("/rest/api/content/{id}/child/attachment/{attachment_id}/download", attachment_download),
    Route("/rest/api/content/{id}/child/{type}", content_children),
    Route("/rest/api/content/{id}/label", labels),
    Route("/download/attachments/{id}/{filename}", download),
]
# GET /rest/api/content and /rest/api/content/{id} share their paths with the write methods;
# `app.py` joins both into one Route per path.
CONTENT_LIST = content_list
CONTENT_BY_ID = content_by_id
