"""Checks on converted Markdown, and the conversion's CPU time, shared by the content tests."""

from __future__ import annotations

import gc
import re
import time

from confluence_rag.content.storage import ConversionContext, storage_to_markdown

_FENCE_LINE = re.compile(r"^[ >]*(?:(?:[-*+]|\d+[.)]) +)?(`{3,})")
# A code span as CommonMark reads it: an unescaped backtick run, closed by a run of equal length.
_CODE_SPAN = re.compile(r"(?<![\\`])(`+)(?!`)(.+?)(?<!`)\1(?!`)")
RAW_MARKUP = re.compile(r"(?<!\\)</?(?:ac|ri):")


def text_outside_code(markdown: str) -> str:
    """The Markdown with fenced blocks and inline code spans removed (code may show markup)."""
    kept: list[str] = []
    fence = ""
    for line in markdown.split("\n"):
        if fence:
            if line.lstrip(" >").startswith(fence) and not line.strip(" >`"):
                fence = ""
            continue
        opened = _FENCE_LINE.match(line)
        if opened:
            fence = opened.group(1)
            continue
        kept.append(_CODE_SPAN.sub(" ", line))
    return "\n".join(kept)


def conversion_cpu_seconds(page: str, ctx: ConversionContext) -> tuple[float, str]:
    """CPU time of one conversion, without the garbage collector: a full collection of the
    whole test process's heap can land inside any measurement and cost more than a small
    page's conversion, which says nothing about the converter."""
    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        markdown = storage_to_markdown(page, ctx)
        return time.process_time() - started, markdown
    finally:
        gc.enable()
