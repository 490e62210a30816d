"""Snippets: a window of a chunk's text around the first match, safe to put into HTML.

Order matters and is fixed: the text is HTML-escaped FIRST, and only then are matched words
wrapped in ``<mark>``. Page content can therefore never inject markup (``<script>`` comes out
as ``&lt;script&gt;``), and the only tags in a snippet are the ``<mark>`` we add. Escaping turns
``<`` into ``&lt;``: the name inside such an entity is never marked, so a query for ``lt`` or
``amp`` cannot break one.

Words match when they equal a query term after a light suffix strip (``deploys``, ``deployed``,
``deploying`` all match ``deploy``), close to what the porter stemmer in the FTS index matched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence

DEFAULT_CHARS = 280
ELLIPSIS = "…"

# Markdown syntax a reader should not see in a snippet (outside code): link and image
# targets, emphasis markers, heading and quote markers at line starts, table rules.
_LINK = re.compile(r"!?\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*\)")
_FENCE = re.compile(r"\s*(?:```|~~~)")
_LINE_MARKERS = re.compile(r"^\s*(?:#{1,6}\s+|(?:>\s?)+)")
_TABLE_RULE = re.compile(r"^\s*\|?(?:\s*:?-{3,}:?\s*\|)+\s*:?-*:?\s*$")
_EMPHASIS = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_WORD = re.compile(r"[^\W_]+")
_SUFFIXES = ("ingly", "edly", "ing", "ies", "ied", "ed", "es", "ly", "s")


def stem(word: str) -> str:
    """A light English stem for matching, never shorter than 3 letters."""
    word = word.lower()
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[: -len(suffix)]
            return base + "y" if suffix in ("ies", "ied") else base
    return word


class Highlighter:
    """Snippets for one query's terms, built once per search.

    A word matches when its stem is a query term's stem, or, for scripts without spaces (CJK),
    when it contains an unspaced term. Stems only strip suffixes and keep at least three
    letters, so a word's first three letters are its stem's: one regex per query finds the
    words starting like a term's stem, and only those are stemmed and checked in Python
    (rather than every word of every chunk).
    """

    def __init__(self, terms: Sequence[str], max_chars: int = DEFAULT_CHARS) -> None:
        self.stems = {stem(t) for t in terms if t}
        self.heads = {s[:3] for s in self.stems}
        # Scripts without spaces (CJK) have no word boundaries: match as substrings of a run.
        self.unspaced = [t.lower() for t in terms if t and not t.isascii()]
        self.max_chars = max_chars
        if self.unspaced or not self.heads:
            words = _WORD.pattern
        else:
            heads = sorted(self.heads, key=len, reverse=True)
            alternatives = "|".join(re.escape(h) for h in heads)
            words = rf"(?<![^\W_])(?:{alternatives})[^\W_]*"
        self._candidates = re.compile(words, re.IGNORECASE)

    def __call__(self, text: str) -> str:
        """Escaped ``text`` (a window of at most ~``max_chars`` characters around the first
        matching word, Markdown syntax removed, whitespace collapsed) with matching words in
        ``<mark>``."""
        flat = " ".join(readable(text or "").split())  # str.split: the same whitespace as \s
        escaped = html.escape(self._window(flat), quote=True)
        if not self.stems:
            return escaped

        def mark(match: re.Match[str]) -> str:
            token = match.group(0)
            if _in_entity(escaped, match.start()) or not self.is_match(token):
                return token
            return f"<mark>{token}</mark>"

        return self._candidates.sub(mark, escaped)

    def is_match(self, word: str) -> bool:
        lowered = word.lower()
        if lowered[:3] in self.heads and stem(lowered) in self.stems:
            return True
        return bool(self.unspaced) and any(term in lowered for term in self.unspaced)

    def first(self, text: str) -> int:
        for found in self._candidates.finditer(text):
            if self.is_match(found.group(0)):
                return found.start()
        return 0

    def _window(self, flat: str) -> str:
        max_chars = self.max_chars
        if len(flat) <= max_chars:
            return flat
        first = self.first(flat)
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


def readable(markdown: str) -> str:
    """The words of a chunk's Markdown as a reader sees them: ``[Home](https://...)`` reads
    ``Home``, fence lines and heading/quote markers go. Code inside fences is kept verbatim
    (a ``# comment`` there is content, not a heading)."""
    lines: list[str] = []
    in_code = False
    for line in markdown.splitlines():
        if _FENCE.match(line):
            in_code = not in_code
        elif in_code:
            lines.append(line)
        elif not _TABLE_RULE.match(line):
            line = _LINE_MARKERS.sub("", line)
            lines.append(_EMPHASIS.sub(r"\2", _LINK.sub(r"\1", line)))
    return "\n".join(lines)


def _in_entity(escaped: str, start: int) -> bool:
    """Is the word at ``start`` the name of an entity? ``html.escape`` turned every ``&`` of
    the text into ``&amp;``, so each ``&`` left starts one of its entities (``&amp;``, ``&lt;``,
    ``&gt;``, ``&quot;``, ``&#x27;``)."""
    return escaped[start - 1 : start] == "&" or escaped[start - 2 : start] == "&#"


def highlight(text: str, terms: Sequence[str], max_chars: int = DEFAULT_CHARS) -> str:
    """One snippet (``Highlighter`` does many for the same terms)."""
    return Highlighter(terms, max_chars)(text)
