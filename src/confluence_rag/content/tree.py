"""The document tree the converter walks: lxml parses, small slotted nodes hold the result.

Why not BeautifulSoup's tree, which markdownify is written for: building it costs about a
second per megabyte of dense markup (a table cell or link every few dozen bytes), most of it in
per-element Python bookkeeping, whichever parser feeds it. lxml's HTML parser reads the same
megabyte in C in ~30 ms, and its parse events build these nodes directly (no lxml tree in
between), in about a fifth of BeautifulSoup's time. They offer the part of
BeautifulSoup's interface the converter and its handlers use, with the same names (``name``,
``contents``, ``parent``, siblings, ``get``, ``get_text``, ``find``, ``find_all``), so the
handlers read the same either way.

Text nodes are ``str`` subclasses (like BeautifulSoup's ``NavigableString``); comments and
processing instructions are dropped while building, since nothing in them is page text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Union

from lxml import etree

Node = Union["Element", "Text"]
Match = str | tuple[str, ...] | list[str] | Callable[["Element"], bool]

# Elements libxml2 adds around any document; their content is the page.
_WRAPPERS = frozenset(("html", "head", "body"))


class Text(str):
    """A run of text inside an element."""

    parent: Element | None = None
    previous_sibling: Node | None = None
    next_sibling: Node | None = None


class Element:
    """An element: lower-case ``name`` (``ac:link`` keeps its prefix), attributes, children."""

    __slots__ = ("name", "attrs", "contents", "parent", "previous_sibling", "next_sibling")

    def __init__(self, name: str, attrs: dict[str, str] | None = None) -> None:
        self.name = name
        self.attrs: dict[str, str] = attrs or {}
        self.contents: list[Node] = []
        self.parent: Element | None = None
        self.previous_sibling: Node | None = None
        self.next_sibling: Node | None = None

    def __repr__(self) -> str:
        return f"<{self.name} {len(self.contents)} children>"

    def get(self, key: str, default: Any = None) -> Any:
        return self.attrs.get(key, default)

    @property
    def descendants(self) -> Iterator[Node]:
        """Every node below this one, in document order (iterative: depth is unbounded)."""
        stack: list[Iterator[Node]] = [iter(self.contents)]
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                continue
            yield node
            if isinstance(node, Element) and node.contents:
                stack.append(iter(node.contents))

    def get_text(self, separator: str = "") -> str:
        return separator.join(node for node in self.descendants if isinstance(node, Text))

    def find_all(self, match: Match, recursive: bool = True) -> list[Element]:
        test = _matcher(match)
        nodes = self.descendants if recursive else iter(self.contents)
        return [node for node in nodes if isinstance(node, Element) and test(node)]

    def find(self, match: Match, recursive: bool = True) -> Element | None:
        test = _matcher(match)
        nodes = self.descendants if recursive else iter(self.contents)
        return next((n for n in nodes if isinstance(n, Element) and test(n)), None)

    def find_parent(self, name: str) -> Element | None:
        node = self.parent
        while node is not None and node.name != name:
            node = node.parent
        return node

    def replace_with(self, replacement: str | Element) -> None:
        """Put ``replacement`` (text or an element) where this element is."""
        parent = self.parent
        if parent is None:
            return
        node: Node = replacement if isinstance(replacement, Element) else Text(replacement)
        index = next(i for i, child in enumerate(parent.contents) if child is self)
        parent.contents[index] = node
        node.parent = parent
        node.previous_sibling, node.next_sibling = self.previous_sibling, self.next_sibling
        _link_neighbours(node)
        self.parent = self.previous_sibling = self.next_sibling = None

    def set_contents(self, nodes: list[Node]) -> None:
        """Make ``nodes`` this element's children, in order (they may come from elsewhere)."""
        self.contents = nodes
        previous: Node | None = None
        for node in nodes:
            node.parent = self
            node.previous_sibling = previous
            if previous is not None:
                previous.next_sibling = node
            previous = node
        if previous is not None:
            previous.next_sibling = None

    def decompose(self) -> None:
        """Remove this element (and what it holds) from the tree."""
        parent = self.parent
        if parent is None:
            return
        parent.contents = [child for child in parent.contents if child is not self]
        before, after = self.previous_sibling, self.next_sibling
        if before is not None:
            before.next_sibling = after
        if after is not None:
            after.previous_sibling = before
        self.parent = self.previous_sibling = self.next_sibling = None


def _link_neighbours(node: Node) -> None:
    if node.previous_sibling is not None:
        node.previous_sibling.next_sibling = node
    if node.next_sibling is not None:
        node.next_sibling.previous_sibling = node


def _matcher(match: Match) -> Callable[[Element], bool]:
    if isinstance(match, str):
        return lambda el: el.name == match
    if isinstance(match, tuple | list):
        names = frozenset(match)
        return lambda el: el.name in names
    return match


def parse_html(markup: str) -> Element:
    """``markup`` parsed by lxml's (recovering) HTML parser, as a ``[document]`` element.

    Raises ``ValueError`` when the parser gave up part-way, rather than returning half a page.
    """
    builder = _TreeBuilder()
    if not markup.strip():
        return builder.document
    parser = etree.HTMLParser(encoding="utf-8", huge_tree=True, target=builder)
    etree.fromstring(markup.encode("utf-8"), parser)
    fatal = [error for error in parser.error_log if error.level == etree.ErrorLevels.FATAL]
    if fatal:
        # libxml2 stops at a fatal error (a resource limit) and keeps only what it had read;
        # the caller falls back to something that keeps the whole page. Nesting is not such a
        # limit here: with a target, no libxml2 tree is built (test_tree checks 5,000 levels).
        raise ValueError(f"markup not parseable as a tree: {fatal[0].message}")
    return builder.document


class _TreeBuilder:
    """lxml parser target: builds the tree from parse events, with no lxml tree in between.

    libxml2 wraps content in ``<html>``/``<body>`` and puts text after a stray ``</body>``
    outside it; those wrappers are ignored, so everything lands in the document, in order.
    Comments and processing instructions have no handler here, so lxml drops them. Text may
    arrive in pieces (and around a dropped comment); pieces are joined into one text node.
    """

    def __init__(self) -> None:
        self.document = Element("[document]")
        self._open: list[Element] = [self.document]
        self._text: list[str] = []

    def start(self, tag: str, attrib: Mapping[str, str]) -> None:
        if self._text:
            self._flush_text()
        if tag in _WRAPPERS:
            return
        # lxml passes a read-only mapping; most elements have no attributes at all.
        element = Element(tag, dict(attrib) if attrib else None)
        self._append(element)
        self._open.append(element)

    def end(self, tag: str) -> None:
        if self._text:
            self._flush_text()
        if tag in _WRAPPERS or len(self._open) == 1:
            return
        self._open.pop()

    def data(self, text: str) -> None:
        self._text.append(text)

    def close(self) -> Element:
        if self._text:
            self._flush_text()
        return self.document

    def _flush_text(self) -> None:
        self._append(Text("".join(self._text)))
        self._text.clear()

    def _append(self, node: Node) -> None:
        parent = self._open[-1]
        contents = parent.contents
        node.parent = parent
        if contents:
            previous = contents[-1]
            previous.next_sibling = node
            node.previous_sibling = previous
        contents.append(node)
