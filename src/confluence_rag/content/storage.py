"""Confluence storage format (XHTML with ``ac:``/``ri:`` elements) -> Markdown.

``storage_to_markdown`` is pure and total: any string in, Markdown out, never an exception.
The pipeline is parse (``xhtml``), convert (``converter`` + the element handlers in ``macros``,
``links``, ``elements``, ``tables``), then tidy the text outside code fences. If the converter
fails on input nobody anticipated, the page degrades to its plain text (``xhtml.plain_text``)
with a warning in the log: a page's words are never lost because of its markup.
"""

from __future__ import annotations

import logging
import re

from confluence_rag.content import elements, links, macros, tables
from confluence_rag.content.context import ConversionContext
from confluence_rag.content.converter import Handler, StorageConverter
from confluence_rag.content.xhtml import parse, plain_text

__all__ = ["ConversionContext", "storage_to_markdown", "HANDLERS"]

log = logging.getLogger(__name__)

HANDLERS: dict[str, Handler] = {
    "ac:structured-macro": macros.structured_macro,
    "ac:macro": macros.structured_macro,
    "ac:link": links.link,
    "ac:image": links.image,
    "ac:emoticon": elements.emoticon,
    "ac:hipchat-emoticon": elements.hipchat_emoticon,
    "ac:task-list": elements.task_list,
    "ac:adf-extension": elements.adf_extension,
    "ac:adf-node": elements.adf_node,
    "time": elements.time,
    "pre": elements.preformatted,
    "ac:plain-text-body": elements.stray_plain_text_body,
    "table": tables.render_table,
    # Configuration and editor hints: never text.
    "ac:parameter": elements.drop,
    "ac:default-parameter": elements.drop,
    "ac:placeholder": elements.drop,
    "ac:task-id": elements.drop,
    "ac:task-uuid": elements.drop,
    "ac:task-status": elements.drop,
    "ac:adf-attribute": elements.drop,
    "ac:adf-mark": elements.drop,
    "ac:emoji": elements.drop,
    "script": elements.drop,
    "style": elements.drop,
}

# The converter writes backtick fences only, possibly inside list items or blockquotes.
_FENCE = re.compile(r"^[ >]*(?:(?:[-*+]|\d{1,9}[.)]) +)?(`{3,})")


def storage_to_markdown(xhtml: str | bytes | None, ctx: ConversionContext | None = None) -> str:
    """Convert one page body to Markdown. Pure; never raises; degrades to plain text."""
    if xhtml is None:
        return ""
    if isinstance(xhtml, bytes):
        xhtml = xhtml.decode("utf-8", errors="replace")
    context = ctx or ConversionContext()
    try:
        document = parse(xhtml)
        converter = StorageConverter(context, HANDLERS)
        return tidy(converter.process_tag(document))
    except Exception as exc:  # noqa: BLE001 - the contract: degrade to text, never fail a page
        log.warning(
            "storage conversion failed (%s: %s); falling back to plain text",
            type(exc).__name__,
            exc,
            extra={"page_id": context.page_id},
        )
        return plain_text(xhtml)


def tidy(markdown: str) -> str:
    """Trailing spaces off and blank runs collapsed to one, except inside code fences."""
    out: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        if fence:
            out.append(line)
            stripped = line.lstrip(" >")
            if stripped.startswith(fence) and not stripped.strip("`").strip():
                fence = ""
            continue
        line = line.rstrip()
        if not line and (not out or not out[-1]):
            continue
        opened = _FENCE.match(line)
        if opened:
            fence = opened.group(1)
        out.append(line)
    return "\n".join(out).strip()
