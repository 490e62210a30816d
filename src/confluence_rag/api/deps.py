"""Dependencies the routes share: the services of this app, and the API token check.

The services live on ``app.state`` (built by the lifespan from the app's own Settings), never in
a module global, so several apps with different settings can run side by side in one process.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from confluence_rag.services import Services
from confluence_rag.settings import Settings


def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        # Only reachable if the app is served without running its lifespan.
        raise RuntimeError("the app's services are not started (lifespan did not run)")
    return services


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


ServicesDep = Annotated[Services, Depends(get_services)]

# The web UI keeps the API token in this HttpOnly, SameSite=Strict cookie after its /login page
# (an EventSource cannot send an Authorization header). Accepted for GET only: a cookie is sent
# by the browser on its own, so it must never authorise a state change on the JSON API.
UI_TOKEN_COOKIE = "crag_token"


def require_api_token(request: Request) -> None:
    """When ``CONFLUENCE_RAG_API_TOKEN`` is set, every /api call must carry it as a Bearer token.

    Compared in constant time; the answer never says how close a wrong token was.
    """
    expected = get_settings(request).api_token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not header and request.method in ("GET", "HEAD"):
        scheme, given = "bearer", request.cookies.get(UI_TOKEN_COOKIE, "")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.get_secret_value().encode()
    ):
        raise StarletteHTTPException(
            401,
            "missing or wrong API token: send 'Authorization: Bearer <CONFLUENCE_RAG_API_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
