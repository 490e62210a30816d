"""Turning a storage-format string into a tree that cannot trip the converter.

Storage format is XHTML with ``ac:``/``ri:`` elements and CDATA sections. Two facts decide the
parsing strategy:

- lxml's HTML parser drops CDATA, and Python's ``html.parser`` only honours it in some versions,
  while an XML parser in recovery mode silently loses everything after a stray end tag. So CDATA
  is lifted out *before* parsing: each section becomes escaped text, which every parser reads
  back verbatim. Adjacent sections (Confluence splits ``]]>`` as ``]]]]><![CDATA[>``) simply
  concatenate; where a terminator is missing, ``cdata_as_text`` decides where a section ends.
- lxml's HTML parser (libxml2) keeps ``ac:link`` as a tag name, honours ``<x/>`` on unknown
  elements, knows every HTML entity (``&nbsp;``, which XML does not), recovers from malformed
  markup, and is ~30 times faster than ``html.parser``. It drops only what follows a closing
  ``</html>``, so document-level end tags are removed first (``tree`` explains the rest). Two
  kinds of broken tag make its recovery lose words, so they are mended first as well.

Deep nesting is capped after parsing (the converter recurses once per level); then content that
an unclosed tag pulled into a Confluence element is lifted back out (``repair``). A regex-only
text extraction is the last resort when anything else fails.
"""

from __future__ import annotations

import html
import re

from confluence_rag.content.repair import EDITOR_METADATA, lift_strays
from confluence_rag.content.tree import Element, parse_html

# The converter uses ~3 Python frames per element level; this leaves ample head room below
# the interpreter's recursion limit even when called from deep inside a server stack.
MAX_DEPTH = 100

# Elements whose converters read only certain children (rows, cells, bodies), not text.
_TEXTLESS_PARENTS = frozenset(
    "table thead tbody tfoot tr colgroup ac:structured-macro ac:macro ac:task-list ac:task "
    "ac:link ac:image ac:adf-extension ac:adf-node".split()
)
_INVALID_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_CDATA_OPEN = "<![CDATA["
_CDATA_CLOSE = "]]>"
_START_TAG = re.compile(r"<([A-Za-z][\w:.-]*)[^<>]*?(/?)>")
# A start tag broken by a "<" before its ">". XML allows "<" neither in a tag nor in an
# attribute value, and libxml2's recovery loses words either way:
# - "x<y then z</p>": the first "<" was text; libxml2 makes an element <y then="" z=""> of it.
# - '<p title="abc>words</p>': the value's closing quote is missing; libxml2 reads the value on
#   to the next quote, however far, and drops every word in between (the whole page if there
#   is no other quote). The quote is closed before the first ">".
# Possessive loops: on the usual, well-formed tag the match fails without backtracking.
_BROKEN_TAG = re.compile(
    r"<(?=[A-Za-z])(?P<tag>(?:[^<>\"']++|\"[^\"<]*+\"|'[^'<]*+')*+)"
    r"(?:(?=<)|(?<==)(?P<quote>[\"'])(?P<value>[^<>]*+)>)"
)
_PARAMETER = re.compile(r"<ac:parameter\b[^>]*?(?:/>|>.*?</ac:parameter\s*>)", re.DOTALL | re.I)
_PLACEHOLDER = re.compile(
    r"<ac:placeholder\b[^>]*?(?:/>|>.*?</ac:placeholder\s*>)", re.DOTALL | re.I
)
_BLOCK_TAG = re.compile(
    r"</?(?:p|div|h[1-6]|li|tr|table|pre|blockquote|br|hr|ac:task|ac:layout-cell|"
    r"ac:structured-macro|ac:macro)\b[^>]*>",
    re.I,
)
_ANY_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_MARKUP_START = re.compile(r"<(?=[A-Za-z/!?]|\Z)")
# Configuration and editor hints, never text. Not ri: elements: they hold no text of their own,
# so any in one is page text that an unclosed tag pulled in.
_HIDDEN = frozenset(
    "ac:parameter ac:default-parameter ac:placeholder ac:task-id ac:task-uuid".split()
)
_DOCUMENT_END = re.compile(r"</(?:html|body)\s*>", re.I)


def escape_cdata(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_markup(text: str) -> str:
    """Backslash-escape ``<`` where a Markdown renderer would read the start of a tag.

    Text such as ``&lt;ac:link&gt;`` must come out as text, never as markup; ``a < b`` stays.
    """
    return _MARKUP_START.sub(r"\\<", text) if "<" in text else text


def safe_url(url: str) -> str:
    """A URL that cannot end a Markdown link early or open markup."""
    for raw, encoded in ((" ", "%20"), ("(", "%28"), (")", "%29"), ("<", "%3C"), (">", "%3E")):
        url = url.replace(raw, encoded)
    return url


def prepare(xhtml: str) -> str:
    """Make the string safe to parse: no control characters, CDATA, ``<![``, ``</html>`` or tags
    broken by a ``<``."""
    text = _INVALID_CHARS.sub("", xhtml)
    if "<![" in text:
        text = cdata_as_text(text)
        # Whatever "<![" is left is not CDATA (Word's "<![if !supportLists]>" and the like);
        # parsers drop unknown marked sections, so make it text.
        text = text.replace("<![", "&lt;![")
    if "</" in text:
        text = _DOCUMENT_END.sub("", text)
    return _BROKEN_TAG.sub(_mend_tag, text)


def cdata_as_text(xhtml: str) -> str:
    """Every CDATA section replaced by its content as escaped text.

    A section runs to the first ``]]>``, as an XML parser reads it, with two exceptions where
    the terminator is plainly missing and the element holding the section is closed before
    the page goes on:

    - no ``]]>`` follows at all: the section ends at its holder's end tag
      (``<ac:plain-text-body><![CDATA[code</ac:plain-text-body>``), which with no terminator
      left can only be markup the author meant;
    - the first ``]]>`` belongs to a later section: the run reaches that section's
      ``<![CDATA[`` after passing its holder's end tag. (Code that shows storage format holds
      ``<![CDATA[`` too, but then its own ``]]>`` is split, so the run ends in ``]]``.)

    Without such an end tag an unterminated section runs to the end of the page: nothing
    marks where the code stops (a ``<p>`` in it may be HTML code), and an XML reader takes
    everything after ``<![CDATA[`` as the section's text. So the words stay, as code.
    """
    parts: list[str] = []
    position = 0
    while (start := xhtml.find(_CDATA_OPEN, position)) >= 0:
        parts.append(xhtml[position:start])
        end, position = _section_end(xhtml, position, start)
        parts.append(escape_cdata(xhtml[start + len(_CDATA_OPEN) : end]))
    parts.append(xhtml[position:])
    return "".join(parts)


def _section_end(xhtml: str, since: int, start: int) -> tuple[int, int]:
    """(Where the text of the section at ``start`` ends, where the page goes on after it)."""
    content = start + len(_CDATA_OPEN)
    end = xhtml.find(_CDATA_CLOSE, content)
    if end < 0:
        closed = _holder_end(xhtml, since, start, len(xhtml))
    else:
        swallowed = xhtml.find(_CDATA_OPEN, content, end)
        if swallowed < 0 or xhtml.endswith("]]", content, end):
            return end, end + len(_CDATA_CLOSE)
        closed = _holder_end(xhtml, since, start, swallowed)
        if closed is None:
            return end, end + len(_CDATA_CLOSE)
    if closed is None:
        return len(xhtml), len(xhtml)
    return closed, closed


def _holder_end(xhtml: str, since: int, start: int, limit: int) -> int | None:
    """Where, before ``limit``, the element holding the section at ``start`` is closed.

    The holder is the element of the last start tag between ``since`` and ``start``; ``None``
    if that is no start tag or its end tag does not come before ``limit``.
    """
    tag_at = xhtml.rfind("<", since, start)
    opened = _START_TAG.match(xhtml, tag_at) if tag_at >= 0 else None
    if opened is None or opened.group(2):
        return None
    closing = re.compile(rf"</{re.escape(opened.group(1))}\s*>", re.I)
    found = closing.search(xhtml, start, limit)
    return found.start() if found else None


def _mend_tag(match: re.Match[str]) -> str:
    tag, quote = match.group("tag"), match.group("quote")
    if quote is None:
        return "&lt;" + tag
    return f"<{tag}{quote}{match.group('value')}{quote}>"


def parse(xhtml: str) -> Element:
    """The storage string as a tree, nesting capped at ``MAX_DEPTH``, strays lifted out."""
    document = parse_html(prepare(xhtml))
    cap_depth(document, MAX_DEPTH)
    # After the cap: lifting content out moves it through at most MAX_DEPTH levels.
    lift_strays(document)
    return document


def cap_depth(root: Element, max_depth: int) -> int:
    """Replace every element nested deeper than ``max_depth`` by its plain text.

    Returns how many subtrees were flattened. Iterative, so it cannot itself overflow.
    """
    too_deep: list[Element] = []
    stack: list[tuple[Element, int]] = [(root, 0)]
    while stack:
        node, depth = stack.pop()
        for child in node.contents:
            if isinstance(child, Element):
                if depth + 1 > max_depth:
                    too_deep.append(child)
                else:
                    stack.append((child, depth + 1))
    flattened = 0
    seen: set[int] = set()
    for node in too_deep:
        target = _text_holder(node)
        if id(target) in seen:
            continue
        seen.add(id(target))
        target.replace_with(flat_text(target))
        flattened += 1
    return flattened


def _text_holder(node: Element) -> Element:
    """The element to flatten so its text lands where the converter still reads text.

    Text directly inside a ``<tr>`` or a macro (outside its body) is ignored by the converter,
    so flattening happens at the nearest ancestor whose parent accepts text.
    """
    while node.parent is not None and node.parent.name in _TEXTLESS_PARENTS:
        if node.parent.parent is None:
            break
        node = node.parent
    return node


def flat_text(node: Element) -> str:
    """The readable text of a subtree: parameters and editor hints removed, spaces collapsed."""
    for hidden in node.find_all(_is_hidden):
        hidden.decompose()
    return " ".join(node.get_text(" ").split())


def _is_hidden(tag: Element) -> bool:
    name = tag.name or ""
    return name in _HIDDEN or name.startswith(EDITOR_METADATA)


def plain_text(xhtml: str) -> str:
    """Last-resort conversion with regular expressions only: the page's text, nothing else.

    Used when the tree converter fails on input nobody anticipated; it keeps the words (and
    code) searchable instead of losing the page.
    """
    text = _INVALID_CHARS.sub("", xhtml)
    text = cdata_as_text(text)
    text = _PARAMETER.sub(" ", text)
    text = _PLACEHOLDER.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _ANY_TAG.sub(" ", text)
    text = html.unescape(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    return escape_markup(text)
