"""The Markdown converter: markdownify's HTML rules plus explicit Confluence element handlers.

markdownify converts children before it calls an element's ``convert_*`` method. For Confluence
elements that is wrong twice over: a macro's parameters would be converted into text (leaking
``Confluence``, ``true`` and macro ids), and a handler that re-converts one child would do the
work again at every nesting level. So ``process_tag`` dispatches ``ac:``/``ri:`` elements (and a
few HTML ones that need the raw subtree) to handlers *before* any child is touched; handlers
choose exactly which parts of the element to convert. Plain HTML goes through markdownify's
``convert_*`` methods, with the whitespace rules extended to Confluence's block elements.

The tree walked is ``tree.Element`` (built from lxml's parser), not BeautifulSoup's: the same
interface, several times cheaper to build.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain

from markdownify import ATX, MarkdownConverter

from confluence_rag.content.context import ConversionContext
from confluence_rag.content.repair import EDITOR_METADATA
from confluence_rag.content.tree import Element, Node, Text
from confluence_rag.content.xhtml import escape_markup, safe_url

ParentTags = frozenset[str]
Handler = Callable[["StorageConverter", Element, ParentTags], str]

_HTML_BLOCKS = frozenset(
    "p div blockquote article section aside header footer nav main figure figcaption ol ul li "
    "dl dt dd table thead tbody tfoot tr td th caption colgroup col pre hr h1 h2 h3 h4 h5 h6 "
    "form fieldset details summary address center".split()
)
_AC_BLOCKS = frozenset(
    "ac:layout ac:layout-section ac:layout-cell ac:plain-text-body "
    "ac:task-list ac:task ac:adf-extension ac:adf-node ac:adf-content ac:adf-fallback".split()
)
# HTML elements with a markdownify (or our) convert_<tag> rule.
_CONVERTED_HTML = frozenset(
    "a b strong i em s del strike code kbd samp blockquote br div article section p ul ol li "
    "dl dt dd hr img q sub sup caption figcaption td th tr [document]".split()
)
_ALL_WHITESPACE = re.compile(r"[\t\n\r\f\v \xa0]+")
_HEADING_TAG = re.compile(r"^h(\d)$")
_FN_NAME_CHARS = re.compile(r"[^a-z0-9_]")
_BACKTICKS = re.compile(r"`+")
_LINE_BREAK = re.compile(r"[ \t]*\n\s*")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
_BLOCK_END = Text("\n")  # marks where a block ends in code_text's walk


def macro_name(el: Element) -> str:
    """A macro's name; atlaskit-era storage sometimes writes ``name`` without the prefix."""
    name = el.get("ac:name") or el.get("name") or ""
    return str(name).strip().lower()


def is_block(el: object) -> bool:
    """Whether ``el`` is a block for whitespace purposes (text next to it is trimmed).

    Macros are not: the same macro may be inline (status, jira, an unknown one that renders
    nothing) or a block, and trimming around one that renders nothing would glue words
    together. ``join_blocks`` removes the spaces that end up at line edges instead.
    """
    if not isinstance(el, Element):
        return False
    name = el.name
    if name in _HTML_BLOCKS or name in _AC_BLOCKS:
        return True
    if name == "ac:rich-text-body":
        # A macro's body is a block; a stray one inside a paragraph is just inline content.
        return el.parent is not None and el.parent.name in ("ac:structured-macro", "ac:macro")
    return False


def code_text(el: Element) -> str:
    """The text of a code element, with a line break around each block element or ``<br>``.

    Code is text, but markup does end up inside it: view-format ``<pre>`` breaks lines with
    ``<br>``, and a tag left open pulls the following paragraphs in. Joined bare, their words
    would run together ("code linetail text").
    """
    parts: list[str] = []
    stack: list[Iterator[Node]] = [iter(el.contents)]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif node is _BLOCK_END:
            _end_line(parts)
        elif isinstance(node, Text):
            parts.append(node)
        elif node.name == "br":
            parts.append("\n")
        elif is_block(node):
            _end_line(parts)
            stack.append(chain(node.contents, (_BLOCK_END,)))
        elif node.contents:
            stack.append(iter(node.contents))
    return "".join(parts)


def _end_line(parts: list[str]) -> None:
    # One break between blocks, not two: a highlighter's <div> per line must not double-space.
    if parts and not parts[-1].endswith("\n"):
        parts.append("\n")


def _is_break(el: object) -> bool:
    return isinstance(el, Element) and el.name == "br"


class StorageConverter(MarkdownConverter):
    """One conversion's converter: holds the context and the element handlers."""

    def __init__(self, ctx: ConversionContext, handlers: dict[str, Handler]) -> None:
        super().__init__(
            heading_style=ATX,
            bullets="-",
            escape_asterisks=False,
            escape_underscores=False,
            escape_misc=False,
            strip_document=None,
        )
        self.ctx = ctx
        self.handlers = handlers
        self._ol_positions: dict[int, int] = {}
        self._convert_fns: dict[str, Callable[[Element, str, ParentTags], str] | None] = {}

    # --- traversal -----------------------------------------------------------------------

    def process_tag(self, node: Element, parent_tags: Iterable[str] | None = None) -> str:
        tags: ParentTags = frozenset(parent_tags or ())
        name = node.name
        handler = self.handlers.get(name)
        if handler is not None:
            return handler(self, node, tags)
        if ":" in name:
            # Resource identifiers carry attributes only; the editor's metadata (fab:) is macro
            # configuration. (What an unclosed tag pulled into either has been lifted out.)
            # Other unknown elements keep their content: Confluence's (inline comment markers,
            # stray bodies) and those of a namespace nobody declared (a third-party app's),
            # whose text a browser shows and a reader sees.
            if name.startswith(("ri:", EDITOR_METADATA)):
                return ""
            return self.convert_children(node, tags)
        child_tags = tags | {name}
        if name in ("td", "th") or (len(name) == 2 and name[0] == "h" and name[1].isdigit()):
            child_tags = child_tags | {"_inline"}
        if name in ("pre", "code", "kbd", "samp"):
            child_tags = child_tags | {"_noformat"}
        text = self.convert_children(node, child_tags)
        convert_fn = self._convert_fn(name)
        if convert_fn is None:
            return text
        return str(convert_fn(node, text, tags))

    def _convert_fn(self, name: str) -> Callable[[Element, str, ParentTags], str] | None:
        """markdownify's ``convert_<tag>`` method for an HTML tag (cached per converter)."""
        if name in self._convert_fns:
            return self._convert_fns[name]
        found: Callable[[Element, str, ParentTags], str] | None
        heading = _HEADING_TAG.match(name)
        if heading:
            level = int(heading.group(1))

            def found(el: Element, text: str, tags: ParentTags) -> str:
                return self.convert_hN(level, el, text, tags)

        elif name in _CONVERTED_HTML:
            found = getattr(self, "convert_" + _FN_NAME_CHARS.sub("_", name), None)
        else:
            # Any other tag (span, u, font, or an invented one) contributes its text only;
            # looking names up blindly would let <soup> call convert_soup().
            found = None
        self._convert_fns[name] = found
        return found

    def convert_children(self, node: Element, parent_tags: ParentTags) -> str:
        """The Markdown of ``node``'s children, joined with block spacing collapsed to 2."""
        parts: list[str] = []
        for child in node.contents:
            if isinstance(child, Text):
                part = self.process_text(child, parent_tags)
            else:
                part = self.process_tag(child, parent_tags)
            if part:
                parts.append(part)
        if "pre" in parent_tags:
            return "".join(parts)
        return join_blocks(parts)

    def process_text(self, el: Text, parent_tags: Iterable[str] | None = None) -> str:
        tags = parent_tags or frozenset()
        text = str(el)
        if "pre" in tags:
            return text
        text = _ALL_WHITESPACE.sub(" ", _INVISIBLE.sub("", text))
        if "_noformat" not in tags:
            # A literal backtick would pair with a code span's and turn text into code (or
            # code into text); "<" that could open a tag is escaped for the same reason.
            text = escape_markup(text).replace("`", "\\`")
        previous, following, parent = el.previous_sibling, el.next_sibling, el.parent
        if is_block(previous) or _is_break(previous) or (previous is None and is_block(parent)):
            text = text.lstrip()
        if is_block(following) or _is_break(following) or (following is None and is_block(parent)):
            text = text.rstrip()
        return text

    # --- helpers for handlers --------------------------------------------------------------

    def inline_text(self, node: Element, parent_tags: ParentTags) -> str:
        """``node``'s content as one line of inline Markdown (for link texts, titles, cells)."""
        text = self.convert_children(node, parent_tags | {"_inline"})
        return " ".join(text.split())

    # --- HTML elements whose markdownify rules do not fit ------------------------------------

    def convert_br(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        # A plain newline: readable as text, and chunkers see the line structure.
        return " " if "_inline" in parent_tags else "\n"

    def convert_a(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        href = str(el.get("href") or "").strip()
        label = text.strip()
        if "_noformat" in parent_tags or not href or href.startswith(("#", "javascript:")):
            return text
        if not label:
            return ""
        href = safe_url(href)
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() else ""
        return f"{lead}[{label}]({href}){trail}"

    def convert_img(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        alt = " ".join(str(el.get("alt") or el.get("title") or "").split())
        src = str(el.get("src") or "").strip()
        if not src or src.startswith("data:"):
            return escape_markup(alt)
        return f"![{escape_markup(alt)}]({safe_url(src)})"

    def convert_code(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        # A code span cannot hold a line break (a blank line would end it): fold to spaces.
        if "_noformat" in parent_tags:
            return text
        text = _LINE_BREAK.sub(" ", text)
        lead = " " if text[:1].isspace() else ""
        trail = " " if text[-1:].isspace() else ""
        text = text.strip()
        if not text:
            return ""
        longest = max((len(run) for run in _BACKTICKS.findall(text)), default=0)
        ticks = "`" * (longest + 1)
        pad = " " if longest else ""
        return f"{lead}{ticks}{pad}{text}{pad}{ticks}{trail}"

    def convert_li(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        text = (text or "").strip()
        parent = el.parent
        if parent is not None and parent.name == "ol":
            bullet = f"{self._ol_number(el, parent)}. "
        else:
            bullet = "- "
        if not text:
            return bullet.rstrip() + "\n"
        return bullet + indent(text, " " * len(bullet)).lstrip(" ") + "\n"

    def _ol_number(self, item: Element, ordered: Element) -> int:
        # Numbering each item by counting its previous siblings is quadratic on long lists;
        # number all items of a list once instead.
        key = id(item)
        if key not in self._ol_positions:
            start_attr = str(ordered.get("start") or "1").strip()
            number = int(start_attr) if start_attr.isdigit() else 1
            for child in ordered.contents:
                if isinstance(child, Element) and child.name == "li":
                    self._ol_positions[id(child)] = number
                    number += 1
        return self._ol_positions.get(key, 1)

    def convert_list(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        text = text.strip("\n")
        if not text.strip():
            return ""
        if "_inline" in parent_tags:
            return " " + " ".join(text.split()) + " "
        if "li" in parent_tags:
            return "\n" + text + "\n"
        return "\n\n" + text + "\n\n"

    convert_ul = convert_list
    convert_ol = convert_list

    def convert_hN(self, n: int, el: Element, text: str, parent_tags: ParentTags) -> str:
        text = " ".join(text.split())
        if "_inline" in parent_tags or not text:
            return f" {text} " if text else ""
        return f"\n\n{'#' * max(1, min(6, n))} {text}\n\n"

    def convert_p(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        text = text.strip()
        if not text:
            return ""
        if "_inline" in parent_tags:
            return f" {text} "
        return f"\n\n{text}\n\n"

    def convert_blockquote(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        text = text.strip()
        if not text:
            return ""
        if "_inline" in parent_tags:
            return f" {text} "
        return "\n\n" + quote_lines(text) + "\n\n"

    # Rows and cells outside a <table> (malformed markup): keep their text, no pipes.
    def convert_td(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        return f" {text.strip()} "

    convert_th = convert_td

    def convert_tr(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        return f"\n\n{text.strip()}\n\n"

    def convert__document_(self, el: Element, text: str, parent_tags: ParentTags) -> str:
        return text


def join_blocks(parts: list[str]) -> str:
    """Concatenate converted siblings; newlines meeting at a boundary collapse to at most 2."""
    if len(parts) == 1 and parts[0][0] not in "\n " and parts[0][-1] != "\n":
        return parts[0]  # the usual case (one text or inline element), and nothing to collapse
    out: list[str] = []
    pending = 0  # newlines owed from the end of the previous part
    started = False
    for part in parts:
        body = part.lstrip("\n")
        leading = len(part) - len(body)
        content = body.rstrip("\n")
        trailing = len(body) - len(content)
        gap = min(max(pending, leading), 2) if started else leading
        if gap or not started:
            content = content.lstrip(" ")  # spaces at the start of a line are layout
        elif content[0] == " " and out[-1].endswith(" "):
            content = content.lstrip(" ")  # words around an element that rendered nothing
        if not content:
            pending = max(pending, leading)
            continue
        if gap and out:
            out[-1] = out[-1].rstrip(" ")
        out.append("\n" * gap)
        out.append(content)
        pending = trailing
        started = True
    out.append("\n" * min(pending, 2))
    return "".join(out)


def indent(text: str, prefix: str) -> str:
    """Prefix every non-empty line (list item continuation, nested blocks)."""
    return "\n".join(prefix + line if line else "" for line in text.split("\n"))


def quote_lines(text: str) -> str:
    """Blockquote every line; empty lines become a bare ``>``."""
    return "\n".join(f"> {line}" if line else ">" for line in text.split("\n"))
