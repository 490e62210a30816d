"""Turning a storage-format string into a tree that cannot trip the converter.

Storage format is XHTML with ``ac:``/``ri:`` elements and CDATA sections. Two facts decide the
parsing strategy:

- lxml's HTML parser drops CDATA, and Python's ``html.parser`` only honours it in some versions,
  while an XML parser in recovery mode silently loses everything after a stray end tag. So CDATA
  is lifted out *before* parsing: each section becomes escaped text, which every parser reads
  back verbatim. Adjacent sections (Confluence splits ``]]>`` as ``]]]]><![CDATA[>``) simply
  concatenate.
- lxml's HTML parser (libxml2) keeps ``ac:link`` as a tag name, honours ``<x/>`` on unknown
  elements, knows every HTML entity (``&nbsp;``, which XML does not), recovers from malformed
  markup, and is ~30 times faster than ``html.parser``. It drops only what follows a closing
  ``</html>``, so document-level end tags are removed first (``tree`` explains the rest).

Deep nesting is capped after parsing (the converter recurses once per level); then content that
an unclosed tag pulled into a Confluence element is lifted back out (``repair``). A regex-only
text extraction is the last resort when anything else fails.
"""

from __future__ import annotations

import html
import re

from confluence_rag.content.repair import lift_strays
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
# A CDATA section runs to the first "]]>"; an unterminated one runs to the end, as a browser
# would read it, rather than losing the rest of the page.
_CDATA = re.compile(r"<!\[CDATA\[(.*?)(?:\]\]>|\Z)", re.DOTALL)
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
    """Make the string safe to parse: no control characters, CDATA, ``<![`` or ``</html>``."""
    text = _INVALID_CHARS.sub("", xhtml)
    if "<![" in text:
        text = _CDATA.sub(lambda m: escape_cdata(m.group(1)), text)
        # Whatever "<![" is left is not CDATA (Word's "<![if !supportLists]>" and the like);
        # parsers drop unknown marked sections, so make it text.
        text = text.replace("<![", "&lt;![")
    if "</" in text:
        text = _DOCUMENT_END.sub("", text)
    return text


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
    # ri: elements hold no text of their own: any there is page text an unclosed tag pulled in.
    name = tag.name or ""
    return name in ("ac:parameter", "ac:placeholder", "ac:task-id", "ac:task-uuid") or (
        ":" in name and not name.startswith(("ac:", "ri:"))
    )


def plain_text(xhtml: str) -> str:
    """Last-resort conversion with regular expressions only: the page's text, nothing else.

    Used when the tree converter fails on input nobody anticipated; it keeps the words (and
    code) searchable instead of losing the page.
    """
    text = _INVALID_CHARS.sub("", xhtml)
    text = _CDATA.sub(lambda m: escape_cdata(m.group(1)), text)
    text = _PARAMETER.sub(" ", text)
    text = _PLACEHOLDER.sub(" ", text)
    text = _BLOCK_TAG.sub("\n", text)
    text = _ANY_TAG.sub(" ", text)
    text = html.unescape(text)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    text = "\n".join(lines)
    text = _BLANK_LINES.sub("\n\n", text).strip()
    return escape_markup(text)
