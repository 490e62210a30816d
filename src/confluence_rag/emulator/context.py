"""What every route needs from a request: the state, the authenticated user, a renderer, and a
JSON response with Confluence's content type."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from confluence_rag.emulator.errors import ConfluenceApiError
from confluence_rag.emulator.records import ContentRecord, SpaceRecord, User
from confluence_rag.emulator.shapes import Render
from confluence_rag.emulator.state import EmulatorState

# Confluence writes no space before charset; some clients compare the header verbatim
JSON_TYPE = "application/json;charset=UTF-8"


class ConfluenceJSON(JSONResponse):
    media_type = JSON_TYPE


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    return ConfluenceJSON(data, status_code=status, headers=headers)


def state_of(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def user_of(request: Request) -> User:
    user: User | None = request.scope.get("emulator.user")
    if user is None:  # the middleware authenticates every request first
        raise ConfluenceApiError(401, "Client must be authenticated to access this resource.")
    return user


def render_for(request: Request) -> Render:
    state = state_of(request)
    context = state.config.context_path
    base = f"{request.url.scheme}://{request.url.netloc}{context}"
    return Render(state=state, flavour=state.config.flavour, base=base, context=context,
                  zone=state.zone)  # fmt: skip


def readable_space(request: Request, key: str) -> SpaceRecord:
    """The space, or 404 if there is none, or 403 if this user may not read it."""
    state = state_of(request)
    space = state.space(key)
    if not state.can_read(user_of(request), space.key):
        raise ConfluenceApiError(
            403, f"User {user_of(request).display_name} does not have permission to view space "
            f"{space.key}"
        )  # fmt: skip
    return space


def readable_content(
    request: Request, content_id: str, statuses: tuple[str, ...] = ("current",)
) -> ContentRecord:
    """Content by id; 404 when missing, in another status, or in a space the user cannot read
    (Confluence does not reveal that such content exists)."""
    state = state_of(request)
    record = state.content(content_id)
    visible = "any" in statuses or record.status in statuses
    if not visible or not state.can_read(user_of(request), record.space_key):
        raise ConfluenceApiError(404, f"No content found with id : ContentId{{id={content_id}}}")
    return record
