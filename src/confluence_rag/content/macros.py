"""``ac:structured-macro`` handlers: what each macro contributes to the text, and nothing more.

A macro's parameters are configuration (colours, ids, theme names, ``true``); only a few are
content (a code block's title, a panel's title, a Jira key, a status label). Each handler reads
exactly those, converts the macro's body where it has one, and never emits the rest. Unknown
macros contribute their rich-text body, or their plain-text body as a code block.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from confluence_rag.content.code_blocks import clean_code, render_fenced
from confluence_rag.content.converter import code_text, macro_name, quote_lines
from confluence_rag.content.languages import known_language, normalise_language
from confluence_rag.content.tree import Element
from confluence_rag.content.xhtml import escape_markup

if TYPE_CHECKING:
    from confluence_rag.content.converter import ParentTags, StorageConverter

MacroHandler = Callable[["StorageConverter", Element, "ParentTags", str], str]

# Macros that generate navigation or listings from other content: they add nothing a search
# index needs (the listed pages are indexed on their own) and leave no trace.
DROPPED_MACROS = frozenset(
    "toc children recently-updated pagetree pagetreesearch contentbylabel blog-posts anchor "
    "livesearch create-from-template listlabels popular-labels related-labels contributors "
    "contributors-summary page-index index navmap detailssummary recently-updated-dashboard "
    "content-report-table tasks-report-macro attachments space-details spaces-list "
    "profile profile-picture".split()
)
# Macros that only wrap rich text (tabs, columns, page-properties, layout helpers).
CONTAINER_MACROS = frozenset(
    "excerpt details section column toc-zone div span center localtab localtab-group "
    "deck card ui-tabs ui-tab ui-expand panel-block auimessage".split()
)
ADMONITION_LABELS = {
    "info": "Info",
    "note": "Note",
    "tip": "Tip",
    "warning": "Warning",
    "success": "Success",
    "error": "Error",
}
_JIRA_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")
_BLOCK_START = re.compile(r"^(?:#{1,6}\s|[-*+]\s|\d{1,9}[.)]\s|>|\||```|~~~)")


def parameter(el: Element, name: str) -> str:
    """The text of the macro's own parameter ``name`` ("" if absent), whitespace collapsed."""
    for child in el.contents:
        if isinstance(child, Element) and child.name == "ac:parameter":
            if str(child.get("ac:name") or child.get("name") or "").strip() == name:
                return " ".join(child.get_text().split())
    return ""


def body(el: Element, kind: str) -> Element | None:
    """The macro's own ``ac:rich-text-body`` or ``ac:plain-text-body``."""
    for child in el.contents:
        if isinstance(child, Element) and child.name == kind:
            return child
    return None


# Inline elements whose Markdown wraps their content in markers ("**", "[...]", "`"): a fence
# inside them would not be a fence any more.
_WRAPPING_INLINE = frozenset("strong b em i s del strike a code kbd samp sub sup q".split())


def inline_context(parent_tags: ParentTags) -> bool:
    """Inside a table cell, heading or emphasis a block cannot be written; it is folded into
    the line instead."""
    return (
        "_inline" in parent_tags
        or "td" in parent_tags
        or not parent_tags.isdisjoint(_WRAPPING_INLINE)
    )


def inline_code(code: str) -> str:
    """Code as an inline span, lines joined by a visible return mark."""
    lines = [line.strip() for line in clean_code(code).split("\n") if line.strip()]
    text = " ⏎ ".join(lines)
    if not text:
        return ""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f" {ticks}{pad}{text}{pad}{ticks} "


def structured_macro(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """Dispatch on the macro's name (``ac:structured-macro`` and legacy ``ac:macro``)."""
    name = macro_name(el)
    if name in DROPPED_MACROS:
        return ""
    handler = MACROS.get(name)
    if handler is None:
        handler = container if name in CONTAINER_MACROS else unknown
    return handler(conv, el, parent_tags, name)


def code(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    language = "" if name == "noformat" else normalise_language(parameter(el, "language"))
    title = escape_markup(parameter(el, "title"))
    plain = body(el, "ac:plain-text-body") or body(el, "ac:rich-text-body")
    text = code_text(plain) if plain is not None else ""
    if inline_context(parent_tags):
        return inline_code(text)
    if not clean_code(text) and not title:
        return ""
    return render_fenced(text, language, title)


def admonition(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    """info/note/tip/warning/panel -> ``> **Note:** text`` (a titled one gets its own line)."""
    label = ADMONITION_LABELS.get(name, "")
    title = escape_markup(parameter(el, "title"))
    rich = body(el, "ac:rich-text-body")
    content = conv.convert_children(rich, parent_tags | {"blockquote"}).strip() if rich else ""
    if not content and not title:
        return ""
    if title:
        head = f"**{label}: {title}**" if label else f"**{title}**"
        text = f"{head}\n\n{content}" if content else head
    elif label:
        lines = content.split("\n", 2)
        captioned_code = len(lines) > 1 and lines[1].startswith("```")
        if _BLOCK_START.match(content) or captioned_code:
            text = f"**{label}:**\n\n{content}"
        else:
            text = f"**{label}:** {content}"
    else:
        text = content
    return "\n\n" + quote_lines(text) + "\n\n"


def expand(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    """The hidden-by-default body, shown: title as a bold line, then the content."""
    title = escape_markup(parameter(el, "title"))
    rich = body(el, "ac:rich-text-body")
    content = conv.convert_children(rich, parent_tags).strip() if rich else ""
    parts = [f"**{title}**"] if title else []
    if content:
        parts.append(content)
    return "\n\n" + "\n\n".join(parts) + "\n\n" if parts else ""


def container(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    rich = body(el, "ac:rich-text-body")
    if rich is None:
        return ""
    return "\n\n" + conv.convert_children(rich, parent_tags).strip() + "\n\n"


def status(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    return escape_markup(parameter(el, "title"))


def jira(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    key = parameter(el, "key")
    if not key:
        default = parameter(el, "")
        key = default if _JIRA_KEY.match(default) else ""
    if key:
        return escape_markup(key)
    jql = parameter(el, "jqlQuery") or parameter(el, "jql")
    return f"Jira issues: {escape_markup(jql)}" if jql else ""


def include(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    """include / excerpt-include -> "(includes page: Title)"; the page is indexed itself."""
    title = ""
    for child in el.contents:
        if not (isinstance(child, Element) and child.name == "ac:parameter"):
            continue
        target = child.find(["ri:page", "ri:blog-post", "ri:content-entity"])
        if isinstance(target, Element):
            title = str(target.get("ri:content-title") or "")
            content_id = str(target.get("ri:content-id") or "")
            if not title and content_id:
                title = conv.ctx.page_titles.get(content_id, "")
            break
    if not title:
        # Older storage names the page in the default parameter as "SPACE:Title" or "Title".
        title = parameter(el, "") or parameter(el, "pageTitle")
        title = title.split(":", 1)[1] if ":" in title else title
    title = " ".join(title.split())
    return f"\n\n(includes page: {escape_markup(title)})\n\n" if title else ""


def unknown(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    """Any other macro: its rich-text body; a plain-text body as code; parameters never."""
    rich = body(el, "ac:rich-text-body")
    if rich is not None:
        return conv.convert_children(rich, parent_tags)
    plain = body(el, "ac:plain-text-body")
    if plain is None:
        return ""
    text = plain.get_text()
    if inline_context(parent_tags):
        return inline_code(text)
    if name == "markdown":
        return "\n\n" + escape_markup(clean_code(text)) + "\n\n"
    if not clean_code(text):
        return ""
    return render_fenced(text, known_language(name))


def math(conv: StorageConverter, el: Element, parent_tags: ParentTags, name: str) -> str:
    """LaTeX math macros keep the formula (stored in a ``body`` parameter or a plain body)."""
    formula = parameter(el, "body")
    if not formula:
        plain = body(el, "ac:plain-text-body")
        formula = plain.get_text().strip() if plain is not None else ""
    if not formula:
        return ""
    formula = escape_markup(formula)
    if "inline" in name or inline_context(parent_tags):
        return f"${' '.join(formula.split())}$"
    return f"\n\n$$\n{formula}\n$$\n\n"


MACROS: dict[str, MacroHandler] = {
    "code": code,
    "noformat": code,
    "info": admonition,
    "note": admonition,
    "tip": admonition,
    "warning": admonition,
    "success": admonition,
    "error": admonition,
    "panel": admonition,
    "expand": expand,
    "ui-expand": expand,
    "status": status,
    "jira": jira,
    "include": include,
    "excerpt-include": include,
    "eazy-math-inline": math,
    "easy-math-inline": math,
    "easy-math-block": math,
    "mathinline": math,
    "mathblock": math,
}
