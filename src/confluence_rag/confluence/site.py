"""Where a Confluence site's REST API lives, from whatever URL a user pastes.

Users paste many shapes: ``https://acme.atlassian.net``, ``https://acme.atlassian.net/wiki/``,
``https://acme.atlassian.net/wiki/spaces/DEV/overview``, ``https://intranet/confluence``,
``https://intranet/confluence/display/DEV/Home``. The client needs one thing from them: the
*API base*, the URL that ``/rest/api/...`` hangs off (and that ``_links.base`` echoes back).

- Cloud serves Confluence under ``/wiki``; a Cloud URL without it gets it added.
- Data Center serves it under its context path (``""``, ``/confluence``, ``/wiki``, ...), which
  is exactly the path the user gave once UI suffixes (``/display/...``) are cut off.

Pure functions: no I/O, so every shape is a parametrized unit test.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from confluence_rag.confluence.models import Flavour
from confluence_rag.errors import InvalidSiteURL

# Path segments that start the UI or API part of a pasted URL; everything from them on is not
# part of the site's base. (Confluence never uses these as a context path.)
_UI_SEGMENTS = frozenset(
    {"rest", "spaces", "display", "pages", "plugins", "x", "download", "api", "dosearchsite.action"}
)
CLOUD_HOST_SUFFIXES = (".atlassian.net", ".jira.com", ".jira-dev.com")


@dataclass(frozen=True, slots=True)
class SiteURL:
    """A normalised site. ``api_base`` has no trailing slash: ``api_base + "/rest/api/..."``."""

    api_base: str
    flavour: Flavour

    @property
    def origin(self) -> str:
        """``scheme://host[:port]``: what a relative download or redirect is resolved against."""
        parts = urlsplit(self.api_base)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def key(self) -> str:
        """Identity of the site for sharing a concurrency limit: case-insensitive host."""
        return self.api_base.lower()

    def __str__(self) -> str:
        return self.api_base


def looks_like_cloud(url: str) -> bool:
    """True for Atlassian-hosted sites, whose API always lives under ``/wiki``."""
    host = (urlsplit(url.strip()).hostname or "").lower()
    return host.endswith(CLOUD_HOST_SUFFIXES)


def normalise_site_url(url: str, flavour: Flavour | None = None) -> SiteURL:
    """Turn a pasted URL into the site's API base.

    ``flavour`` comes from the credentials (an API token means Cloud, a PAT Data Center); when
    None it is guessed from the host. A query or fragment (from a pasted page link) is dropped.
    Raises :class:`InvalidSiteURL` for anything that is not an absolute http(s) URL with a host,
    or that carries a user name or password.
    """
    if not isinstance(url, str) or not url.strip():
        raise InvalidSiteURL(
            "The Confluence site URL is empty: give e.g. https://acme.atlassian.net"
        )
    text = url.strip()
    try:
        parts = urlsplit(text)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as error:
        raise InvalidSiteURL(f"{_shown(text)} is not a valid URL ({error}).") from error
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise InvalidSiteURL(
            f"{_shown(text)} is not an http(s) URL: give the address you open Confluence at, "
            "e.g. https://acme.atlassian.net or https://confluence.example.com/confluence"
        )
    if not parts.hostname:
        raise InvalidSiteURL(f"{_shown(text)} has no host name.")
    if parts.username is not None or parts.password is not None:
        # never echo the URL: it contains a secret
        raise InvalidSiteURL(
            "The site URL must not contain a user name or password: "
            "give credentials separately (email + API token, or a personal access token)."
        )
    host = parts.hostname.lower()
    netloc = host if port is None or port == _default_port(scheme) else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port is None else f"[{host}]:{port}"
    path = _context_path(parts.path)
    if flavour is None:
        flavour = "cloud" if host.endswith(CLOUD_HOST_SUFFIXES) else "datacenter"
    if flavour == "cloud":
        # Cloud serves the REST API under /wiki only; anything else the user gave before it is
        # not meaningful there
        if not path.endswith("/wiki"):
            path = "/wiki" if host.endswith(CLOUD_HOST_SUFFIXES) else path + "/wiki"
    return SiteURL(api_base=f"{scheme}://{netloc}{path}", flavour=flavour)


def _context_path(raw_path: str) -> str:
    """The path before any UI/API segment, without trailing slashes (``""`` for the root)."""
    kept: list[str] = []
    for segment in raw_path.split("/"):
        if not segment:
            continue
        if segment.lower() in _UI_SEGMENTS:
            break
        kept.append(segment)
    return "".join(f"/{segment}" for segment in kept)


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _shown(text: str) -> str:
    """The URL as shown in a message: quoted, cut short, and without any user info."""
    if "@" in text:
        return "The URL"
    return repr(text if len(text) <= 200 else text[:200] + "...")
