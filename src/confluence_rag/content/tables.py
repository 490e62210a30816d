"""HTML tables -> GitHub pipe tables.

A pipe-table cell is one line, but Confluence cells hold paragraphs, lists, line breaks, code
and whole tables. Each cell is converted as ordinary blocks and then flattened: its lines are
joined with plain separators ("; ", or a space after punctuation), list items become "• item",
and a table nested in a cell becomes "a, b; c, d". No ``<br>`` is emitted: the text stays
readable as plain text, which is what the index and a reader see.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from confluence_rag.content.tree import Element

if TYPE_CHECKING:
    from confluence_rag.content.converter import ParentTags, StorageConverter

# Spans larger than this are markup accidents (or attacks); they would only add empty cells.
MAX_SPAN = 50

_LIST_ITEM = re.compile(r"^(?:[-*+]|(\d{1,9})[.)])\s+(.*)$")
_HEADING = re.compile(r"^#{1,6}\s+")
_SENTENCE_END = (".", "!", "?", ":", ";", ",")


def render_table(conv: StorageConverter, table: Element, parent_tags: ParentTags) -> str:
    """A pipe table, or a one-line flattening when the table sits inside a cell or heading."""
    nested = "td" in parent_tags or "_inline" in parent_tags
    cell_tags = parent_tags | {"td", "table"}
    grid: list[list[str]] = []
    pending: dict[int, int] = {}  # column -> rows still covered by a rowspan above
    for row in _rows(table):
        cells: list[str] = []
        column = 0
        for cell in _cells(row):
            while pending.get(column, 0) > 0:
                pending[column] -= 1
                cells.append("")
                column += 1
            text = flatten_cell(conv.convert_children(cell, cell_tags))
            colspan = _span(cell, "colspan")
            rowspan = _span(cell, "rowspan")
            for offset in range(colspan):
                cells.append(text if offset == 0 else "")
                if rowspan > 1:
                    pending[column + offset] = rowspan - 1
            column += colspan
        while pending.get(column, 0) > 0:
            pending[column] -= 1
            cells.append("")
            column += 1
        if any(cells):
            grid.append(cells)
    if not grid:
        return ""
    caption_tag = table.find("caption", recursive=False)
    caption = conv.inline_text(caption_tag, parent_tags) if caption_tag else ""
    if nested:
        flat = "; ".join(", ".join(c for c in row if c) for row in grid)
        return f" {caption}: {flat} " if caption else f" {flat} "
    width = max(len(row) for row in grid)
    lines = [_line(grid[0], width), "|" + " --- |" * width]
    lines.extend(_line(row, width) for row in grid[1:])
    head = f"{caption}\n\n" if caption else ""
    return "\n\n" + head + "\n".join(lines) + "\n\n"


def _line(cells: list[str], width: int) -> str:
    padded = cells + [""] * (width - len(cells))
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in padded) + " |"


def _rows(table: Element) -> list[Element]:
    """The table's own rows, in order (thead, tbody, tfoot or bare), never a nested table's."""
    rows: list[Element] = []
    for child in table.contents:
        if not isinstance(child, Element):
            continue
        if child.name == "tr":
            rows.append(child)
        elif child.name in ("thead", "tbody", "tfoot"):
            rows.extend(c for c in child.contents if isinstance(c, Element) and c.name == "tr")
    if not rows:
        # Malformed markup (rows wrapped in something else): take rows whose table is this one.
        rows = [tr for tr in table.find_all("tr") if tr.find_parent("table") is table]
    return rows


def _cells(row: Element) -> list[Element]:
    return [c for c in row.contents if isinstance(c, Element) and c.name in ("td", "th")]


def _span(cell: Element, attribute: str) -> int:
    raw = str(cell.get(attribute) or "1").strip()
    return max(1, min(MAX_SPAN, int(raw))) if raw.isdigit() else 1


def flatten_cell(markdown: str) -> str:
    """One line from a cell's block Markdown, separators chosen to keep it readable."""
    pieces: list[str] = []
    for raw in markdown.split("\n"):
        line = raw.strip().lstrip(">").strip()
        if not line:
            continue
        line = _HEADING.sub("", line)
        item = _LIST_ITEM.match(line)
        if item:
            number, rest = item.groups()
            line = f"{number}. {rest}" if number else f"• {rest}"
        pieces.append(line)
    if not pieces:
        return ""
    out = pieces[0]
    for piece in pieces[1:]:
        separator = " " if out.endswith(_SENTENCE_END) or piece.startswith("• ") else "; "
        out += separator + piece
    return out
