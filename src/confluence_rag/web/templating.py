"""The Jinja2 environment of the UI and the one way a view answers with a page.

Autoescaping is on for every template: page titles, snippets, error messages and URLs are all
untrusted text. The only value ever marked safe is ``SearchHit.snippet_html`` (escaped by the
search service, with ``<mark>`` added) and the output of ``render.render_markdown``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from confluence_rag.web.render import is_safe_url
from confluence_rag.web.security import (
    CSRF_FIELD,
    add_security_headers,
    csrf_token_for,
    set_csrf_cookie,
)

TEMPLATES = Path(__file__).parent / "templates"


def relative_time(value: datetime | None, now: datetime | None = None) -> str:
    """ "3 minutes ago" / "in 2 hours"; "never" for None."""
    if value is None:
        return "never"
    now = now or datetime.now(UTC)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    seconds = (value - now).total_seconds()
    future = seconds > 0
    seconds = abs(seconds)
    if seconds < 45:
        return "in a moment" if future else "just now"
    for size, unit in ((86400 * 365, "year"), (86400 * 30, "month"), (86400, "day"),
                       (3600, "hour"), (60, "minute")):  # fmt: skip
        if seconds >= size:
            count = round(seconds / size)
            words = f"{count} {unit}{'' if count == 1 else 's'}"
            return f"in {words}" if future else f"{words} ago"
    return "in a minute" if future else "a minute ago"


def iso(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def absolute(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def duration(seconds: float | int | None) -> str:
    if seconds is None:
        return ""
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def url_part(value: object) -> str:
    """One path segment: ids contain ':' '+' '~', which must stay one segment."""
    return quote(str(value), safe="")


def safe_href(url: object) -> str:
    """A link target from untrusted data (Confluence URLs): unsafe schemes become '#'."""
    text = str(url or "")
    return text if text and is_safe_url(text) else "#"


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        reltime=relative_time,
        iso=iso,
        absolute=absolute,
        duration=duration,
        url_part=url_part,
        safe_href=safe_href,
    )
    return env


class Pages:
    """Renders templates into responses with the security headers and the CSRF cookie."""

    def __init__(self, environment: Environment | None = None) -> None:
        self.env = environment or build_environment()

    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        status_code: int = 200,
    ) -> HTMLResponse:
        token, new = csrf_token_for(request)
        settings = request.app.state.settings
        values: dict[str, Any] = {
            "request": request,
            "csrf_field": CSRF_FIELD,
            "csrf_token": token,
            "login_enabled": settings.api_token is not None,
            "path": request.url.path,
        }
        values.update(context or {})
        html = self.env.get_template(template).render(values)
        response = HTMLResponse(html, status_code=status_code)
        if new:
            set_csrf_cookie(response, token, request)
        add_security_headers(response)
        return response
