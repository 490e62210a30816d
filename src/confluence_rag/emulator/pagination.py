"""Paging the way Confluence does: silent limit caps, offset (``start``) links for Data Center,
opaque search-after cursors for Cloud search and v2, and ``_links.next`` relative to the base.

A Cloud cursor encodes the sort key of the last item served, not an offset, so a page edited or
created between two requests neither repeats nor shifts the rest of the walk (what Cloud's
``_sa_`` cursors do). Data Center's ``start`` offsets do shift, as the real server's do.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from confluence_rag.emulator.cql_eval import Inverted
from confluence_rag.emulator.errors import ConfluenceApiError


def int_param(params: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfluenceApiError(400, f"{name} must be an integer, not '{raw}'") from None
    if value < minimum:
        raise ConfluenceApiError(400, f"{name} must be {minimum} or more, not {value}")
    return value


def link(path: str, params: Mapping[str, Any]) -> str:
    """A relative link (to ``_links.base``) carrying every parameter a client must not re-add."""
    clean = {k: v for k, v in params.items() if v is not None and v != ""}
    return f"{path}?{urlencode(clean)}" if clean else path


def encode_cursor(key: tuple[object, ...]) -> str:
    parts = [{"i": p.value} if isinstance(p, Inverted) else p for p in key]
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[object, ...]:
    try:
        padded = token + "=" * (-len(token) % 4)
        parts = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(parts, list):
            raise ValueError("cursor is not a list")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ConfluenceApiError(400, f"Invalid cursor: {token}") from None
    return tuple(Inverted(p["i"]) if isinstance(p, dict) else p for p in parts)


def position_after(
    items: list[Any], cursor: tuple[object, ...], key: Callable[[Any], tuple[object, ...]]
) -> int:
    """Index of the first item whose sort key is after ``cursor`` (items sorted by ``key``)."""
    lo, hi = 0, len(items)
    try:
        while lo < hi:
            mid = (lo + hi) // 2
            if cursor < key(items[mid]):
                hi = mid
            else:
                lo = mid + 1
    except TypeError:
        # a cursor minted for another ordering: the real server rejects it too
        raise ConfluenceApiError(400, "The cursor does not match this query") from None
    return lo
