"""Indexed Markdown -> HTML for the page view, safe for untrusted page content.

Page text comes from Confluence, where anyone with edit rights can write anything, so it is
treated as hostile:

- raw HTML is disabled: a ``<script>`` or ``<img onerror=...>`` in the Markdown is shown as
  text, never parsed as a tag;
- links and images keep only ``http``, ``https``, ``mailto`` and relative targets: a
  ``javascript:``, ``data:`` or ``vbscript:`` target renders as plain text, not as a link;
- every external link opens with ``rel="noopener noreferrer nofollow"``.

markdown-it-py escapes text and attributes itself; this module only narrows what it allows.
The page's CSP (``web.security.CSP``) is the second line of defence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
# Browsers ignore these characters inside a scheme ("java\tscript:"), so they are removed before
# the scheme is read.
_IGNORED_IN_SCHEME = re.compile(r"[\x00-\x20\x7f]+")


def is_safe_url(url: str) -> bool:
    """Whether ``url`` may become a link: http(s), mailto, or relative (no scheme at all)."""
    cleaned = _IGNORED_IN_SCHEME.sub("", url)
    if not cleaned:
        return False
    scheme = urlsplit(cleaned).scheme.lower()
    if scheme:
        return scheme in ALLOWED_SCHEMES
    # No scheme: relative path, fragment or query. "//host/x" is protocol-relative: http(s).
    return ":" not in cleaned.split("/", 1)[0] or cleaned.startswith(("/", "#", "?", "."))


def _validate_link(url: str) -> bool:
    return is_safe_url(url)


class _SafeRenderer(RendererHTML):
    """Adds rel/target to links; the link filter itself is markdown-it's ``validateLink``."""

    def link_open(
        self, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
    ) -> str:
        token = tokens[idx]
        href = str(token.attrGet("href") or "")
        if urlsplit(href).scheme.lower() in ("http", "https") or href.startswith("//"):
            token.attrSet("rel", "noopener noreferrer nofollow")
        return self.renderToken(tokens, idx, options, env)


def make_renderer() -> MarkdownIt:
    """A CommonMark + tables + strikethrough parser with raw HTML off and safe links only."""
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.validateLink = _validate_link  # type: ignore[method-assign]
    md.renderer = _SafeRenderer(md)
    return md


_MD = make_renderer()


def render_markdown(markdown: str) -> str:
    """Safe HTML for ``markdown`` (an indexed page)."""
    return _render(_MD, markdown)


def _render(md: MarkdownIt, markdown: str) -> str:
    html: Any = md.render(markdown or "")
    return str(html)
