"""v1 write endpoints, so tests change a space through the real API: create (POST), update /
restore / move (PUT, version must be current + 1 else 409), trash and purge (DELETE), labels."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from confluence_rag.emulator.context import (
    json_response,
    readable_content,
    readable_space,
    render_for,
    state_of,
    user_of,
)
from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.shapes import content_json, expand_tree, labels_envelope

# what Confluence expands in the answer to a create or update
WRITE_EXPAND = expand_tree("body.storage,version,space,history,ancestors")


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except ValueError:
        raise ConfluenceApiError(400, "Could not parse the request body as JSON") from None


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfluenceApiError(400, "The request body must be a JSON object")
    return data


def _storage(data: dict[str, Any]) -> str | None:
    body = data.get("body")
    if body is None:
        return None
    storage = body.get("storage") if isinstance(body, dict) else None
    if not isinstance(storage, dict) or not isinstance(storage.get("value"), str):
        raise ConfluenceApiError(400, "body.storage.value must be a string (storage format)")
    if storage.get("representation", "storage") != "storage":
        raise ConfluenceApiError(400, "Only the storage representation is supported")
    value: str = storage["value"]
    return value


def _parent(data: dict[str, Any]) -> str | None:
    ancestors = data.get("ancestors")
    if not ancestors:
        return None
    if not isinstance(ancestors, list) or not isinstance(ancestors[-1], dict):
        raise ConfluenceApiError(400, 'ancestors must be a list of {"id": ...}')
    return str(ancestors[-1].get("id"))


def _space_key(data: dict[str, Any]) -> str | None:
    space = data.get("space")
    if space is None:
        return None
    if not isinstance(space, dict) or not space.get("key"):
        raise ConfluenceApiError(400, 'space must be {"key": ...}')
    return str(space["key"])


async def create_content(request: Request) -> Response:
    data = _object(await _json_body(request))
    ctype = data.get("type", "page")
    if ctype not in ("page", "blogpost"):
        raise ConfluenceApiError(400, f"Unsupported content type: {ctype}")
    title = data.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ConfluenceApiError(400, "A title is required")
    key = _space_key(data)
    if key is None:
        raise ConfluenceApiError(400, 'A space is required: {"space": {"key": ...}}')
    space = readable_space(request, key)
    parent = _parent(data)
    if parent is not None:
        readable_content(request, parent)
    status = data.get("status", "current")
    if status not in ("current", "draft"):
        raise ConfluenceApiError(400, f"Cannot create content with status {status}")
    record = state_of(request).create_content(
        title=title,
        space_key=space.key,
        body=_storage(data) or "",
        content_type=ctype,
        parent_id=parent,
        author=user_of(request).account_id,
        status=status,
    )
    return json_response(content_json(record, WRITE_EXPAND, render_for(request)))


async def update_content(request: Request) -> Response:
    content_id = request.path_params["id"]
    data = _object(await _json_body(request))
    record = readable_content(request, content_id, ("current", "trashed", "archived", "draft"))
    version = data.get("version")
    if not isinstance(version, dict) or not isinstance(version.get("number"), int):
        raise ConfluenceApiError(
            400, "Must supply an incremented version when updating Content. No version supplied."
        )
    status = data.get("status")
    if status is not None and status not in ("current", "archived", "draft"):
        raise ConfluenceApiError(400, f"Cannot update content to status {status}")
    key = _space_key(data)
    if key is not None:
        readable_space(request, key)
    title = data.get("title")
    if title is not None and (not isinstance(title, str) or not title.strip()):
        raise ConfluenceApiError(400, "The title cannot be empty")
    updated = state_of(request).update_content(
        record.id,
        version=version["number"],
        title=title,
        body=_storage(data),
        status=status,
        space_key=key,
        parent_id=_parent(data),
        minor_edit=bool(version.get("minorEdit", False)),
        message=str(version.get("message", "")),
        author=user_of(request).account_id,
    )
    return json_response(content_json(updated, WRITE_EXPAND, render_for(request)))


async def delete_content(request: Request) -> Response:
    """Trash current content; with ``?status=trashed``, purge trashed content for good."""
    content_id = request.path_params["id"]
    state = state_of(request)
    purge = request.query_params.get("status") == "trashed"
    record = readable_content(
        request, content_id, ("trashed",) if purge else ("current", "archived")
    )
    if purge:
        state.purge(record.id)
    else:
        state.trash(record.id)
    return Response(status_code=204)


async def add_labels(request: Request) -> Response:
    record = readable_content(request, request.path_params["id"])
    data = await _json_body(request)
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfluenceApiError(400, 'labels must be {"prefix": "global", "name": ...}')
        name = item["name"].strip().lower()
        if not name or " " in name:
            raise ConfluenceApiError(400, f"Invalid label name: {item['name']!r}")
        state_of(request).add_label(record.id, name)
    return json_response(labels_envelope(record, render_for(request)))
