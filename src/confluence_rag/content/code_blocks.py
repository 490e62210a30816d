"""Fenced code blocks: writing them safely and finding them again in converted Markdown.

The converter writes every code macro as a fence; code search needs those blocks back as
records, with the headings they sit under. Both directions live here so the fence format has
one owner.
"""

from __future__ import annotations

import re

from confluence_rag.content.models import CodeBlock

_BACKTICK_RUN = re.compile(r"`+")
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
# A fence may sit inside list items (indented) or blockquotes ("> "), so allow that prefix.
_LIST_MARKER = r"(?:(?:[-*+]|\d{1,9}[.)]) +)?"
_FENCE_OPEN = re.compile(
    r"^(?P<prefix>[ >]*" + _LIST_MARKER + r")(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$"
)
_CAPTION = re.compile(r"^[ >]*" + _LIST_MARKER + r"\*\*(?P<title>(?:(?!\*\*).)+)\*\*$")


def fence_for(code: str) -> str:
    """A backtick fence longer than any backtick run inside ``code`` (at least three)."""
    longest = max((len(run) for run in _BACKTICK_RUN.findall(code)), default=0)
    return "`" * max(3, longest + 1)


def clean_code(code: str) -> str:
    """Code as it should appear inside a fence: newlines normalised, blank edges dropped.

    Indentation of the first line is kept (it is part of the code); only whole blank lines at
    the start and whitespace at the very end are removed.
    """
    code = code.replace("\r\n", "\n").replace("\r", "\n")
    lines = code.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def render_fenced(code: str, language: str = "", title: str = "") -> str:
    """A Markdown block: optional bold caption line, then the fenced code."""
    code = clean_code(code)
    fence = fence_for(code)
    caption = f"**{title}**\n" if title else ""
    body = f"{code}\n" if code else ""
    return f"\n\n{caption}{fence}{language}\n{body}{fence}\n\n"


def _strip_prefix(line: str, prefix: str) -> str:
    """A code line without the container prefix of its fence ("> ", list indentation)."""
    if line.startswith(prefix):
        return line[len(prefix) :]
    # Continuation lines of a list item are indented by the marker's width; blank lines inside
    # a blockquote are a bare ">".
    head = line[: len(prefix)]
    if not head.strip(" >"):
        return line[len(prefix) :]
    return line


def extract_code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced block in ``markdown``, in order, with its heading path and caption.

    ``heading_path`` holds the ATX headings (top level, outside code) that enclose the block,
    outermost first. A fence left open runs to the end, as CommonMark reads it.
    """
    blocks: list[CodeBlock] = []
    headings: list[tuple[int, str]] = []
    lines = markdown.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = _FENCE_OPEN.match(line)
        if not opened:
            heading = _ATX_HEADING.match(line)
            if heading:
                level = len(heading.group(1))
                headings = [h for h in headings if h[0] < level]
                headings.append((level, heading.group(2).strip()))
            i += 1
            continue
        prefix, fence = opened.group("prefix"), opened.group("fence")
        language = opened.group("info").strip().split(" ")[0] if opened.group("info") else ""
        closing = re.compile(r"^[ >]*" + re.escape(fence[0]) + "{" + str(len(fence)) + r",}\s*$")
        # The caption is the line right above the fence (render_fenced puts it there).
        previous = lines[i - 1] if i else ""
        caption = _CAPTION.match(previous.rstrip())
        code_lines: list[str] = []
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            code_lines.append(_strip_prefix(lines[i], prefix))
            i += 1
        i += 1  # the closing fence (or past the end)
        code = "\n".join(code_lines)
        blocks.append(
            CodeBlock(
                language=language,
                code=code,
                line_count=len(code_lines),
                heading_path=tuple(title for _, title in headings),
                title=caption.group("title") if caption else "",
            )
        )
    return blocks
