"""Cloud's v2 API (``/wiki/api/v2``): spaces and pages, cursor paging only, ``limit`` <= 250,
``_links.next`` plus a ``Link`` header. v2 links are relative to the *site*, so they start with
``/wiki/api/v2``, unlike v1 links which are relative to ``_links.base``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from confluence_rag.emulator.config import DEFAULT_LIMIT, V2_MAX_LIMIT
from confluence_rag.emulator.context import (
    json_response,
    readable_content,
    render_for,
    state_of,
    user_of,
)
from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.pagination import decode_cursor, encode_cursor, int_param, link
from confluence_rag.emulator.shapes import page_v2_json, space_v2_json

V2 = "/api/v2"
T = TypeVar("T")


def _limit(request: Request) -> int:
    limit = int_param(request.query_params, "limit", DEFAULT_LIMIT, minimum=1)
    if limit > V2_MAX_LIMIT:
        raise ConfluenceApiError(400, f"limit must be between 1 and {V2_MAX_LIMIT}")
    return limit


def _after(request: Request) -> int:
    """The numeric id after which this page starts (v2 pages are ordered by id)."""
    cursor = request.query_params.get("cursor")
    if not cursor:
        return -1
    (last,) = decode_cursor(cursor)
    if not isinstance(last, int):
        raise ConfluenceApiError(400, f"Invalid cursor: {cursor}")
    return last


def _paged(
    request: Request,
    items: list[tuple[int, T]],
    render: Callable[[T], Any],
    path: str,
    **keep: Any,
) -> Response:
    """One page of ``(id, item)`` pairs sorted by id; only the served items are rendered."""
    limit = _limit(request)
    after = _after(request)
    chosen = [(i, item) for i, item in items if i > after][: limit + 1]
    body: dict[str, Any] = {"results": [render(item) for _, item in chosen[:limit]], "_links": {}}
    headers: dict[str, str] = {}
    if len(chosen) > limit:
        context = state_of(request).config.context_path
        cursor = encode_cursor((chosen[limit - 1][0],))
        next_link = link(f"{context}{V2}{path}", {**keep, "limit": limit, "cursor": cursor})
        body["_links"]["next"] = next_link
        headers["Link"] = f'<{next_link}>; rel="next"'
    body["_links"]["base"] = render_for(request).base
    return json_response(body, headers=headers)


async def spaces(request: Request) -> Response:
    r = render_for(request)
    user = user_of(request)
    keys = {k for raw in request.query_params.getlist("keys") for k in raw.split(",") if k}
    found = sorted(
        (
            s
            for s in r.state.spaces.values()
            if r.state.can_read(user, s.key) and (not keys or s.key in keys)
        ),
        key=lambda s: s.id,
    )
    keep = {"keys": ",".join(sorted(keys)) or None}
    items = [(s.id, s) for s in found]
    return _paged(request, items, lambda s: space_v2_json(s, r), "/spaces", **keep)


async def space_by_id(request: Request) -> Response:
    r = render_for(request)
    found = r.state.space_by_id(request.path_params["id"])
    if not r.state.can_read(user_of(request), found.key):
        raise ConfluenceApiError(403, f"No permission to view space {found.id}")
    return json_response(space_v2_json(found, r))


async def space_pages(request: Request) -> Response:
    r = render_for(request)
    found_space = r.state.space_by_id(request.path_params["id"])
    if not r.state.can_read(user_of(request), found_space.key):
        raise ConfluenceApiError(403, f"No permission to view space {found_space.id}")
    params = request.query_params
    statuses = {s for raw in params.getlist("status") for s in raw.split(",") if s}
    statuses = statuses or {"current", "archived"}
    body_format = params.get("body-format")
    if body_format not in (None, "storage", "atlas_doc_format"):
        raise ConfluenceApiError(400, f"Unsupported body-format: {body_format}")
    depth_root = params.get("depth") == "root"
    title = params.get("title")
    records = sorted(
        (
            c
            for c in list(r.state.contents.values())
            if c.space_key == found_space.key
            and c.type == "page"
            and c.status in statuses
            and (not depth_root or c.parent_id is None)
            and (title is None or c.title == title)
        ),
        key=lambda c: int(c.id),
    )
    keep = {"body-format": body_format, "status": ",".join(sorted(set(params.getlist("status"))))}
    path = f"/spaces/{found_space.id}/pages"
    items = [(int(c.id), c) for c in records]
    return _paged(request, items, lambda c: page_v2_json(c, body_format, r), path, **keep)


async def page(request: Request) -> Response:
    r = render_for(request)
    record = readable_content(request, request.path_params["id"], ("current", "archived"))
    if record.type != "page":
        raise ConfluenceApiError(404, f"Page {record.id} not found")
    body_format = request.query_params.get("body-format")
    return json_response(page_v2_json(record, body_format, r))


ROUTES = [
    Route(f"{V2}/spaces", spaces),
    Route(f"{V2}/spaces/{{id}}", space_by_id),
    Route(f"{V2}/spaces/{{id}}/pages", space_pages),
    Route(f"{V2}/pages/{{id}}", page),
]
