"""Small Confluence elements: emoticons, dates, task lists, ``<pre>``, ADF extensions.

Each one either carries a little text a reader would see (an emoji, a date, a checkbox) or
wraps content that must be kept; none of them may leak its ids or attributes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from confluence_rag.content.code_blocks import clean_code, render_fenced
from confluence_rag.content.converter import code_text, indent, quote_lines
from confluence_rag.content.languages import known_language
from confluence_rag.content.macros import ADMONITION_LABELS, inline_code, inline_context
from confluence_rag.content.tree import Element
from confluence_rag.content.xhtml import escape_markup

if TYPE_CHECKING:
    from confluence_rag.content.converter import ParentTags, StorageConverter

# Confluence's legacy emoticon names (the ones its editor still writes as ac:name).
EMOTICONS = {
    "smile": "🙂",
    "sad": "🙁",
    "cheeky": "😛",
    "laugh": "😀",
    "wink": "😉",
    "thumbs-up": "👍",
    "thumbs-down": "👎",
    "information": "ℹ️",
    "tick": "✅",
    "cross": "❌",
    "warning": "⚠️",
    "plus": "➕",
    "minus": "➖",
    "question": "❓",
    "light-on": "💡",
    "light-off": "💡",
    "yellow-star": "⭐",
    "red-star": "⭐",
    "green-star": "⭐",
    "blue-star": "⭐",
    "heart": "❤️",
    "broken-heart": "💔",
}
_LANGUAGE_CLASS = re.compile(r"(?:^|\s)(?:language|lang)-([A-Za-z0-9_+#.-]+)")
_BRUSH = re.compile(r"brush:\s*([A-Za-z0-9_+#.-]+)")


def _attr(el: Element, name: str) -> str:
    return " ".join(str(el.get(name) or "").split())


def drop(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """Parameters, editor placeholders, task ids: configuration, not content."""
    return ""


def emoticon(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    fallback = _attr(el, "ac:emoji-fallback")
    if fallback:
        return escape_markup(fallback)
    shortname = _attr(el, "ac:emoji-shortname")
    if shortname:
        return escape_markup(shortname)
    name = _attr(el, "ac:name").lower()
    if name in EMOTICONS:
        return EMOTICONS[name]
    return f":{escape_markup(name)}:" if name else ""


def hipchat_emoticon(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    shortcut = _attr(el, "ac:shortcut")
    return f":{escape_markup(shortcut)}:" if shortcut else ""


def time(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """``<time datetime="2024-01-01"/>`` -> the date (the element is usually empty)."""
    when = _attr(el, "datetime")
    return escape_markup(when) if when else conv.convert_children(el, parent_tags)


def task_list(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """``ac:task-list`` -> ``- [ ]`` / ``- [x]`` items; nested lists are indented."""
    items: list[str] = []
    for task in el.contents:
        if not (isinstance(task, Element) and task.name == "ac:task"):
            continue
        done = False
        text = ""
        for part in task.contents:
            if not isinstance(part, Element):
                continue
            if part.name == "ac:task-status":
                done = part.get_text().strip().lower() == "complete"
            elif part.name == "ac:task-body":
                text = conv.convert_children(part, parent_tags | {"li"}).strip()
        mark = "- [x]" if done else "- [ ]"
        items.append(f"{mark} {indent(text, '  ').lstrip(' ')}" if text else mark)
    if not items:
        return ""
    text = "\n".join(items)
    if "_inline" in parent_tags:
        return " " + " ".join(text.split()) + " "
    if "li" in parent_tags:
        return "\n" + text + "\n"
    return "\n\n" + text + "\n\n"


def preformatted(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """HTML ``<pre>`` -> a fenced block; a highlighter class names the language."""
    text = code_text(el)
    if inline_context(parent_tags):
        return inline_code(text)
    classes = " ".join(str(c) for c in (el.get("class") or []))
    params = _attr(el, "data-syntaxhighlighter-params")
    code_child = el.find("code")
    if isinstance(code_child, Element):
        classes += " " + " ".join(str(c) for c in (code_child.get("class") or []))
    found = _LANGUAGE_CLASS.search(classes) or _BRUSH.search(params)
    language = known_language(found.group(1)) if found else ""
    return render_fenced(text, language) if text.strip() else ""


def stray_plain_text_body(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """A code body found outside a macro (whose tags were lost): still code a reader sees.

    Macro handlers read their own bodies directly; only a stray one is converted here.
    """
    text = code_text(el)
    if inline_context(parent_tags):
        return inline_code(text)
    return render_fenced(text) if clean_code(text) else ""


def adf_extension(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    """New-editor content (``ac:adf-extension``): its ADF node if understood, else the fallback."""
    node = el.find("ac:adf-node", recursive=False)
    if node is not None:
        return adf_node(conv, node, parent_tags)
    return conv.convert_children(el, parent_tags)


def adf_node(conv: StorageConverter, el: Element, parent_tags: ParentTags) -> str:
    kind = _attr(el, "type").lower()
    attributes = {
        _attr(c, "key"): c.get_text().strip()
        for c in el.contents
        if isinstance(c, Element) and c.name == "ac:adf-attribute"
    }
    content = conv.convert_children(el, parent_tags).strip()
    if kind == "panel":
        label = ADMONITION_LABELS.get(attributes.get("panel-type", "").lower(), "")
        if not content:
            return ""
        text = f"**{label}:** {content}" if label else content
        return "\n\n" + quote_lines(text) + "\n\n"
    if kind == "decision-item":
        return f"- Decision: {' '.join(content.split())}\n" if content else ""
    if kind == "decision-list":
        return "\n\n" + content + "\n\n"
    return "\n\n" + content + "\n\n" if content else ""
