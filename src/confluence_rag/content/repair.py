"""Moving content that an unclosed tag pulled into an element that cannot hold it back out.

libxml2 recovers from a start tag that is never closed by nesting everything that follows
inside that element, up to an ancestor's end tag or the end of the page. For HTML that costs
nothing: the converter reads every child of a ``<div>``. Confluence elements are different:
a macro's handler reads its parameters and bodies only, a link its resource and link body, a
table its rows and cells, an emoticon or a ``ri:page`` nothing but attributes. So in
``<ac:structured-macro ac:name="code">...</ac:plain-text-body><p>tail</p>`` with the macro
never closed, "tail" sat inside the macro, where no handler looks, and was lost.

``lift_strays`` knows what each such element may hold in storage format (the facts its handler
relies on) and moves everything else out, where the source puts it: after the element, or
before it for content ahead of its first legitimate child (``<table>text<tr>``). Moved content
is checked again against its new parent, so a paragraph swallowed by an unclosed parameter of
an unclosed macro ends up after the macro, as prose.

A code body (``ac:plain-text-body``) holds text only: its CDATA has become text before parsing,
so an element in it is either the page after a body left open or markup written into a body
without CDATA. The first is prose and is lifted out; the second loses its tags either way
(parsed markup is no longer code), so lifting it costs nothing. CDATA that is never terminated
is ``xhtml.cdata_as_text``'s case: still text, so it stays in the code block.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluence_rag.content.tree import Element, Node, Text

# The editor's macro metadata (display type, placeholder URL): configuration, never text.
EDITOR_METADATA = "fab:"


@dataclass(frozen=True)
class Holds:
    """What an element may contain in storage format; anything else is a stray."""

    elements: frozenset[str] = frozenset()
    resources: bool = False  # any ri:* element
    text: bool = False  # non-blank text
    phrasing: bool = False  # inline HTML, as in a parameter value written with markup
    metadata: bool = False  # any EDITOR_METADATA element


_TEXT_ONLY = Holds(text=True)
_EMPTY = Holds()
_MACRO = Holds(
    frozenset("ac:parameter ac:default-parameter ac:rich-text-body ac:plain-text-body".split()),
    metadata=True,
)
_PARAMETER = Holds(frozenset({"ac:link"}), resources=True, text=True, phrasing=True)
_ROW_GROUP = Holds(frozenset({"tr"}))

HOLDS: dict[str, Holds] = {
    "ac:structured-macro": _MACRO,
    "ac:macro": _MACRO,
    "ac:parameter": _PARAMETER,
    "ac:default-parameter": _PARAMETER,
    "ac:link": Holds(frozenset({"ac:link-body", "ac:plain-text-link-body"}), resources=True),
    "ac:plain-text-body": _TEXT_ONLY,
    "ac:plain-text-link-body": _TEXT_ONLY,
    "ac:image": Holds(frozenset({"ac:caption"}), resources=True),
    "ac:task-list": Holds(frozenset({"ac:task"})),
    "ac:task": Holds(frozenset("ac:task-id ac:task-uuid ac:task-status ac:task-body".split())),
    "ac:task-id": _TEXT_ONLY,
    "ac:task-uuid": _TEXT_ONLY,
    "ac:task-status": _TEXT_ONLY,
    "ac:placeholder": _TEXT_ONLY,
    "ac:adf-attribute": _TEXT_ONLY,
    "ac:adf-extension": Holds(frozenset({"ac:adf-node", "ac:adf-fallback"})),
    "ac:emoticon": _EMPTY,
    "ac:hipchat-emoticon": _EMPTY,
    "time": _EMPTY,
    "table": Holds(frozenset("caption colgroup col thead tbody tfoot tr".split())),
    "thead": _ROW_GROUP,
    "tbody": _ROW_GROUP,
    "tfoot": _ROW_GROUP,
    "tr": Holds(frozenset({"td", "th"})),
    "colgroup": Holds(frozenset({"col"})),
}
# Resource identifiers name a target in attributes; only an attachment holds another (its page).
_RESOURCE = Holds(resources=True)
# Namespaces ruled by prefix: resource identifiers, and the editor's macro metadata, whose text
# is configuration ("INLINE", a placeholder URL).
_BY_PREFIX = {"ri:": _RESOURCE, EDITOR_METADATA: _TEXT_ONLY}
_PREFIXES = tuple(_BY_PREFIX)
_PHRASING = frozenset(
    "a abbr b bdi bdo big br cite code del dfn em font i ins kbd mark q s samp small span "
    "strike strong sub sup tt u var wbr".split()
)
_TABLE_PARTS = frozenset({"tr", "thead", "tbody", "tfoot"})


def holds(name: str) -> Holds | None:
    """The content rule for an element named ``name``; ``None`` if it may hold anything."""
    rule = HOLDS.get(name)
    if rule is None and name.startswith(_PREFIXES):
        return _BY_PREFIX[name[: name.index(":") + 1]]
    return rule


_Split = tuple[list[Node], list[Node], list[Node]]


def lift_strays(root: Element) -> int:
    """Move every stray out of the element holding it; returns how many nodes moved.

    Elements are checked deepest first, and each parent's child list is rebuilt once, after all
    its children are checked: linear in the tree, times the levels a node is lifted through
    (``cap_depth`` bounds those).
    """
    ruled = _ruled_elements(root)
    moved = 0
    index = len(ruled) - 1
    while index >= 0:
        # Siblings are adjacent in breadth-first order: take one parent's ruled children.
        parent = ruled[index].parent
        splits: dict[int, _Split] = {}
        while index >= 0 and ruled[index].parent is parent:
            split = _split(ruled[index])
            if split is not None:
                splits[id(ruled[index])] = split
            index -= 1
        if parent is not None and splits:
            moved += _rebuild(parent, splits)
    return moved


def _rebuild(parent: Element, splits: dict[int, _Split]) -> int:
    """Put each split child's strays around it in ``parent``; returns how many moved."""
    moved = 0
    rebuilt: list[Node] = []
    for child in parent.contents:
        split = splits.get(id(child))
        if split is None or not isinstance(child, Element):
            rebuilt.append(child)
            continue
        before, kept, after = split
        child.set_contents(kept)
        rebuilt += before
        rebuilt.append(child)
        rebuilt += after
        moved += len(before) + len(after)
    parent.set_contents(rebuilt)
    return moved


def _ruled_elements(root: Element) -> list[Element]:
    """The elements under ``root`` that have a content rule, in breadth-first order."""
    ruled: list[Element] = []
    queue = [root]
    for node in queue:  # the queue grows while it is read
        for child in node.contents:
            if isinstance(child, Element):
                queue.append(child)
                if child.name in HOLDS or child.name.startswith(_PREFIXES):
                    ruled.append(child)
    return ruled


def _split(el: Element) -> _Split | None:
    """(strays to put before ``el``, what it keeps, strays to put after); ``None`` if none."""
    rule = holds(el.name)
    if rule is None:
        return None
    for node in el.contents:  # the usual case, nothing astray, checked without calls
        if isinstance(node, Text):
            if rule.text or node.isspace():
                continue
        elif node.name in rule.elements:
            continue
        if not _fits(node, rule):
            break
    else:
        return None
    # Rows wrapped in something else (<table><div><tr>): the table renderer takes those rows
    # when it has none of its own, so such a wrapper is no stray.
    wrapped_rows = el.name == "table" and not any(
        isinstance(c, Element) and c.name in _TABLE_PARTS for c in el.contents
    )
    before: list[Node] = []
    kept: list[Node] = []
    after: list[Node] = []
    anchored = False  # whether a legitimate, non-blank child has been seen
    for node in el.contents:
        if _fits(node, rule) or (wrapped_rows and _wraps_rows(node)):
            kept.append(node)
            anchored = anchored or not (isinstance(node, Text) and node.isspace())
        elif anchored:
            after.append(node)
        else:
            before.append(node)
    if not before and not after:
        return None
    if not anchored:
        # Nothing legitimate to stand behind: the strays followed the start tag in the source.
        before, after = [], before + after
    return before, kept, after


def _fits(node: Node, rule: Holds) -> bool:
    if isinstance(node, Text):
        return rule.text or not node or node.isspace()
    name = node.name
    return (
        name in rule.elements
        or (rule.resources and name.startswith("ri:"))
        or (rule.phrasing and name in _PHRASING)
        or (rule.metadata and name.startswith(EDITOR_METADATA))
    )


def _wraps_rows(node: Node) -> bool:
    return isinstance(node, Element) and node.name != "table" and node.find("tr") is not None
