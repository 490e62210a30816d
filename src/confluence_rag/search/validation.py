"""The limits and checks every search passes, whichever surface it came through.

One place for each fact: the API's request models, the web form, the MCP tools and the CLI all
use these constants, and ``SearchService`` applies the checks again, so a limit cannot differ
between surfaces. Pure: no I/O. Whether a named source or space *exists* is a question for the
services layer (``confluence_rag.filters``), which calls ``checked_filters`` first.
"""

from __future__ import annotations

import re
from dataclasses import replace

from confluence_rag.errors import InvalidInput
from confluence_rag.records import SearchFilters

MAX_QUERY_CHARS = 1000
MAX_LIMIT = 100
# Spaces or labels per search: far more than a person picks, small enough to stay cheap in SQL.
MAX_FILTER_VALUES = 50
MAX_LANGUAGE_CHARS = 64

# Filter values as Confluence allows them: a space key of letters and digits (or ~user for a
# personal space), a label without whitespace, quotes or the characters Confluence refuses in
# labels. Anything else (e.g. ``DEV" OR space="HR``) is an error, not a silent empty result; the
# values only ever reach SQL as bound parameters anyway.
_SPACE_KEY = re.compile(r"[A-Za-z0-9]{1,255}|~[A-Za-z0-9._@+:\-]{1,255}")
_LABEL = re.compile(r"[^\s\x00-\x1f\x7f\"'`\\:;,!#&()*<>?@\[\]^{}]{1,255}")


def checked_query(query: str) -> str:
    """The query without surrounding blanks; ``InvalidInput`` if empty or too long."""
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput("the query is empty", details={"field": "query"})
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidInput(
            f"the query is longer than {MAX_QUERY_CHARS} characters", details={"field": "query"}
        )
    return query.strip()


def check_limit(limit: int) -> None:
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be between 1 and {MAX_LIMIT}, got {limit!r}", details={"field": "limit"}
        )


def space_key(space: str) -> str:
    """A space key as stored: upper case, except a personal space (``~user``) keeps its case."""
    space = space.strip()
    return space if space.startswith("~") else space.upper()


def normalised_filters(filters: SearchFilters) -> SearchFilters:
    """Blank values dropped (assistants send "" for "no filter"), space keys upper-cased,
    labels lower-cased (Confluence stores them so) and de-duplicated."""
    source_id = (filters.source_id or "").strip() or None
    spaces = tuple(dict.fromkeys(space_key(s) for s in filters.spaces if s and s.strip()))
    labels = tuple(
        dict.fromkeys(label.strip().lower() for label in filters.labels if label and label.strip())
    )
    language = (filters.language or "").strip().lower() or None
    return replace(filters, source_id=source_id, spaces=spaces, labels=labels, language=language)


def checked_filters(filters: SearchFilters) -> SearchFilters:
    """``filters`` if every value is well formed; ``InvalidInput`` naming the bad one."""
    for name, values, pattern in (
        ("spaces", filters.spaces, _SPACE_KEY),
        ("labels", filters.labels, _LABEL),
    ):
        if len(values) > MAX_FILTER_VALUES:
            raise InvalidInput(
                f"at most {MAX_FILTER_VALUES} {name} per search, got {len(values)}",
                details={"field": name},
            )
        for value in values:
            if not isinstance(value, str) or not pattern.fullmatch(value):
                shown = repr(value)[:60]
                raise InvalidInput(
                    f"{shown} is not a valid {name[:-1]} filter",
                    details={"field": name},
                )
    if filters.language is not None and len(filters.language) > MAX_LANGUAGE_CHARS:
        raise InvalidInput("the language filter is too long", details={"field": "language"})
    return filters
