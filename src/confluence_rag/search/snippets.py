"""Snippets: a window of a chunk's text around the first match, safe to put into HTML.

Order matters and is fixed: the text is HTML-escaped FIRST, and only then are matched words
wrapped in ``<mark>``. Page content can therefore never inject markup (``<script>`` comes out
as ``&lt;script&gt;``), and the only tags in a snippet are the ``<mark>`` we add. Escaping turns
``<`` into ``&lt;``: the scan below steps over such entities whole, so a query for ``lt`` or
``amp`` never marks the inside of one.

Words match when they equal a query term after a light suffix strip (``deploys``, ``deployed``,
``deploying`` all match ``deploy``), close to what the porter stemmer in the FTS index matched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

DEFAULT_CHARS = 280
ELLIPSIS = "…"

# One escaped entity (skipped whole) or one word (checked against the terms).
_TOKEN = re.compile(r"&(?:#[0-9a-zA-Z]+|[a-zA-Z]+);|[^\W_]+", re.UNICODE)
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_SPACE = re.compile(r"\s+")
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A light English stem for matching, never shorter than 3 letters."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


def _matcher(terms: Sequence[str]) -> tuple[set[str], list[str]]:
    stems = {stem(t) for t in terms if t}
    # Terms in scripts without spaces (CJK) are matched as substrings of a run of characters.
    unspaced = [t.lower() for t in terms if t and not t.isascii()]
    return stems, unspaced


def _is_match(word: str, stems: set[str], unspaced: list[str]) -> bool:
    if stem(word) in stems:
        return True
    lowered = word.lower()
    return any(term in lowered for term in unspaced)


def highlight(text: str, terms: Sequence[str], max_chars: int = DEFAULT_CHARS) -> str:
    """Escaped ``text`` (a window of at most ~``max_chars`` characters around the first
    matching word, whitespace collapsed) with matching words in ``<mark>``."""
    flat = _SPACE.sub(" ", text or "").strip()
    stems, unspaced = _matcher(terms)
    window = _window(flat, stems, unspaced, max_chars)
    escaped = html.escape(window, quote=True)

    def mark(match: re.Match[str]) -> str:
        token = match.group(0)
        if token.startswith("&") or not _is_match(token, stems, unspaced):
            return token
        return f"<mark>{token}</mark>"

    return _TOKEN.sub(mark, escaped)


def _window(flat: str, stems: set[str], unspaced: list[str], max_chars: int) -> str:
    if len(flat) <= max_chars:
        return flat
    first = next(
        (m.start() for m in _WORD.finditer(flat) if _is_match(m.group(0), stems, unspaced)), 0
    )
    start = max(0, first - max_chars // 3)
    if start > 0:
        space = flat.find(" ", start)
        start = space + 1 if 0 <= space < first else start
    end = min(len(flat), start + max_chars)
    if end < len(flat):
        space = flat.rfind(" ", start, end)
        end = space if space > first else end
    prefix = ELLIPSIS if start > 0 else ""
    suffix = ELLIPSIS if end < len(flat) else ""
    return prefix + flat[start:end].strip() + suffix
