"""Browser-facing protections of the web UI: security headers, CSRF, and the UI login cookie.

Content-Security-Policy
    Every UI page carries ``CSP`` below. Scripts and styles come only from our own
    ``/static`` files (no inline ``<script>``, no ``style=""``), so even if page content ever
    slipped through escaping, a browser would refuse to run it. ``frame-ancestors 'none'``
    stops click-jacking, ``base-uri 'none'`` stops a ``<base>`` tag re-pointing relative links.

CSRF: double-submit token, plus an Origin check
    Chosen over an Origin/Sec-Fetch-Site check alone because it also protects browsers and
    proxies that strip those headers, and needs no server-side session store. A GET of any UI
    page sets a random token in the ``crag_csrf`` cookie (SameSite=Strict, HttpOnly) and puts
    the same value in a hidden field of every form; a state-changing POST must carry both and
    they must match (compared in constant time). Another site cannot read our cookie or our
    pages, so it cannot forge the field. When the browser does send ``Origin``, it must be this
    server's own origin too: a cross-origin form post is refused even before the token check.

UI login
    When ``CONFLUENCE_RAG_API_TOKEN`` is set, the UI asks for it once (``/login``) and keeps it in
    an HttpOnly, SameSite=Strict cookie (``api.deps.UI_TOKEN_COOKIE``). ``/api`` accepts that
    cookie for GET requests only (the live progress stream cannot send headers), so the cookie
    can never drive a state change through the JSON API, where no CSRF token is checked.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request
from starlette.responses import Response

from confluence_rag.app_state import UI_TOKEN_COOKIE
from confluence_rag.settings import Settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    # Pages show index content and forms with a CSRF token: never serve them from a cache.
    "Cache-Control": "no-store",
}
CSRF_COOKIE = "crag_csrf"
CSRF_FIELD = "csrf_token"
TOKEN_BYTES = 32


class CSRFError(Exception):
    """A state-changing form post failed the CSRF checks (answered 403 by the views)."""


def add_security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers[name] = value
    return response


def csrf_token_for(request: Request) -> tuple[str, bool]:
    """The token to put in this page's forms, and whether it is new (the cookie must be set)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if _well_formed(current):
        return current, False
    return secrets.token_urlsafe(TOKEN_BYTES), True


def set_csrf_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def check_csrf(request: Request, submitted: str | None) -> None:
    """Raise ``CSRFError`` unless the post is same-origin and carries the cookie's token."""
    origin = request.headers.get("origin")
    if origin is not None and not same_origin(origin, request):
        raise CSRFError("the form was posted from another site")
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CSRFError("the form was posted from another site")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not _well_formed(cookie) or not submitted:
        raise CSRFError("the form's security token is missing; reload the page and try again")
    if not hmac.compare_digest(cookie.encode(), submitted.encode()):
        raise CSRFError("the form's security token does not match; reload the page and try again")


def same_origin(origin: str, request: Request) -> bool:
    """Whether an ``Origin`` header names this server (scheme, host and port as requested)."""
    if origin == "null":
        return False
    parts = urlsplit(origin)
    host = request.headers.get("host", "")
    return parts.scheme == request.url.scheme and parts.netloc.lower() == host.lower()


def ui_token_ok(request: Request, settings: Settings) -> bool:
    """Whether this browser may see the UI: no API token configured, or the cookie holds it."""
    expected = settings.api_token
    if expected is None:
        return True
    given = request.cookies.get(UI_TOKEN_COOKIE, "")
    return bool(given) and hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def token_matches(given: str, settings: Settings) -> bool:
    expected = settings.api_token
    if expected is None:
        return True
    return hmac.compare_digest(given.strip().encode(), expected.get_secret_value().encode())


def set_login_cookie(response: Response, token: str, request: Request) -> None:
    response.set_cookie(
        UI_TOKEN_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def safe_next(target: str | None) -> str:
    """A post-login redirect target on this site only (no ``//host`` or ``scheme:`` escapes)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _well_formed(token: str) -> bool:
    return 20 <= len(token) <= 128 and all(c.isalnum() or c in "-_" for c in token)
