"""Building CQL that cannot be injected, and date windows that cannot miss an edit.

Every value goes into the query as a double-quoted CQL string with ``\\`` and ``"`` escaped, so a
space key or label such as ``A" OR space = "B`` stays one literal value. Space keys are also
validated (Confluence allows letters and digits; personal spaces are ``~`` + a user name or
account id), so a bad key is a clear error here rather than a confusing 400 from the server.

Dates: CQL compares ``lastmodified`` at minute granularity, read in the API user's time zone,
which the API never reveals. A sync therefore (1) converts its last-sync instant into the
configured site zone, (2) subtracts a safety overlap (default a day, which also covers a wrong
zone setting), and (3) formats ``"yyyy-MM-dd HH:mm"`` rounded down. The overlap re-lists some
pages; callers dedupe by version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from confluence_rag.confluence.models import PageType
from confluence_rag.errors import ConfigurationError, InvalidInput

PAGE_TYPES: tuple[PageType, ...] = ("page", "blogpost")
CQL_DATE_FORMAT = "%Y-%m-%d %H:%M"

# Global keys: letters and digits (Confluence refuses anything else). Personal keys: "~" then a
# user name (Data Center: letters, digits, . _ - @ +) or a Cloud account id (hex, or "557058:uuid").
_GLOBAL_KEY = re.compile(r"[A-Za-z0-9]{1,255}")
_PERSONAL_KEY = re.compile(r"~[A-Za-z0-9._@+:\-]{1,255}")
_MAX_VALUE_LEN = 1000


def validate_space_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid space key, else raise :class:`InvalidInput`."""
    if not isinstance(key, str) or not (_GLOBAL_KEY.fullmatch(key) or _PERSONAL_KEY.fullmatch(key)):
        raise InvalidInput(
            f"{_preview(key)} is not a Confluence space key: a key is letters and digits "
            "(e.g. DEV), or ~ followed by a user name for a personal space.",
            details={"space_key": _preview(key)},
        )
    return key


def quote(value: str) -> str:
    """A CQL string literal for ``value``: double quotes, ``\\`` and ``"`` escaped.

    Control characters have no meaning in any Confluence value and could confuse a server's
    tokenizer, so they are refused rather than escaped.
    """
    if not isinstance(value, str):
        raise InvalidInput(f"CQL values must be text, not {type(value).__name__}")
    if len(value) > _MAX_VALUE_LEN:
        raise InvalidInput(f"CQL value is longer than {_MAX_VALUE_LEN} characters")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise InvalidInput(f"{_preview(value)} contains control characters")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def validate_types(types: Iterable[str]) -> tuple[PageType, ...]:
    """The content types to list, deduplicated in order; only page and blogpost exist here."""
    chosen: list[PageType] = []
    for item in types:
        if item not in PAGE_TYPES:
            raise InvalidInput(
                f"unknown content type {_preview(item)}: use 'page' and/or 'blogpost'"
            )
        if item not in chosen:
            chosen.append(item)
    if not chosen:
        raise InvalidInput("at least one content type (page or blogpost) is needed")
    return tuple(chosen)


def site_zone(name: str) -> ZoneInfo:
    """The configured site time zone, or a :class:`ConfigurationError` naming the setting."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ConfigurationError(
            f"site_timezone {name!r} is not a known time zone (use an IANA name like "
            "'Europe/Berlin' or 'UTC'; CONFLUENCE_RAG_SITE_TIMEZONE)"
        ) from error


def cql_datetime(instant: datetime, zone: ZoneInfo) -> str:
    """``instant`` as CQL reads it in ``zone``: ``"yyyy-MM-dd HH:mm"``, seconds dropped.

    Dropping the seconds rounds *down*, so ``>=`` this value never skips the instant itself.
    """
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(
            "CQL date windows need a time-zone-aware datetime (e.g. datetime.now(UTC)); "
            "a naive one is ambiguous"
        )
    return instant.astimezone(zone).strftime(CQL_DATE_FORMAT)


def modified_since_clause(
    since: datetime, *, zone: ZoneInfo, overlap: timedelta = timedelta(days=1)
) -> str:
    """``lastmodified >= "..."`` for an incremental sync that last saw the site at ``since``."""
    if overlap < timedelta(0):
        raise InvalidInput("the sync overlap must not be negative")
    return f"lastmodified >= {quote(cql_datetime(since - overlap, zone))}"


def content_cql(
    space_keys: str | Sequence[str],
    *,
    types: Iterable[str] = PAGE_TYPES,
    modified_since: datetime | None = None,
    zone: ZoneInfo | None = None,
    overlap: timedelta = timedelta(days=1),
    labels: Iterable[str] = (),
    order_by: str | None = "created",
) -> str:
    """The CQL for listing a space's content.

    ``order by created`` keeps offset pagination stable while pages are edited during a walk
    (creation time never changes; edits would move pages under ``lastmodified``).
    """
    keys = [space_keys] if isinstance(space_keys, str) else list(space_keys)
    if not keys:
        raise InvalidInput("at least one space key is needed")
    for key in keys:
        validate_space_key(key)
    clauses = [_field_in("space", keys)]
    kinds = validate_types(types)
    clauses.append(_field_in("type", kinds))
    label_list = list(labels)
    if label_list:
        for label in label_list:
            if not label or not label.strip():
                raise InvalidInput("labels must not be empty")
        clauses.append(_field_in("label", label_list))
    if modified_since is not None:
        clauses.append(
            modified_since_clause(modified_since, zone=zone or ZoneInfo("UTC"), overlap=overlap)
        )
    query = " AND ".join(clauses)
    if order_by is not None:
        if order_by not in ("created", "lastmodified", "title"):
            raise InvalidInput(f"cannot order CQL by {_preview(order_by)}")
        query += f" ORDER BY {order_by} ASC"
    return query


def ids_cql(page_ids: Iterable[str]) -> str:
    """``id in ("1","2",...)``: fetching known pages by id in one search request."""
    ids = list(page_ids)
    if not ids:
        raise InvalidInput("at least one page id is needed")
    for page_id in ids:
        validate_page_id(page_id)
    return _field_in("id", ids)


def validate_page_id(page_id: str) -> str:
    """Content ids are decimal digits; anything else is a caller bug or an injection attempt."""
    if not isinstance(page_id, str) or not page_id.isdigit() or len(page_id) > 30:
        raise InvalidInput(f"{_preview(page_id)} is not a Confluence content id (digits only)")
    return page_id


def _field_in(field: str, values: Sequence[str]) -> str:
    if len(values) == 1:
        return f"{field} = {quote(values[0])}"
    return f"{field} IN ({', '.join(quote(value) for value in values)})"


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
