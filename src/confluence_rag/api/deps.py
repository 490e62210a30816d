"""Dependencies the routes share: the services of this app (``confluence_rag.app_state``, which
the web UI uses too), and the API token check."""

from __future__ import annotations

import hmac

from fastapi import Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from confluence_rag.app_state import UI_TOKEN_COOKIE, ServicesDep, get_services, get_settings

__all__ = ["UI_TOKEN_COOKIE", "ServicesDep", "get_services", "get_settings", "require_api_token"]


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
