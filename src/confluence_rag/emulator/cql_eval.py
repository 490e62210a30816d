"""Evaluating a parsed CQL query (`cql.parse`) against content records, and ordering results.

Field semantics, the implicit ``status = current`` and date intervals are described in `cql`.
Evaluation compiles the AST once into nested closures, then runs them per record; the store
supplies ancestors, text and users through the small ``CqlContext`` protocol.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Protocol

from confluence_rag.emulator.cql import (
    DATE_FUNCTIONS,
    And,
    Clause,
    CqlError,
    Node,
    Not,
    Or,
    OrderBy,
    Query,
    Value,
)
from confluence_rag.emulator.records import ContentRecord


class CqlContext(Protocol):
    """What evaluation needs from the store, besides the record itself."""

    zone: tzinfo

    def now(self) -> datetime: ...

    def ancestor_ids(self, record: ContentRecord) -> list[str]: ...

    def text_of(self, record: ContentRecord) -> TextEntry: ...

    def user_ids(self, value: str) -> set[str]:
        """Account ids a creator/contributor value names (account id or username)."""
        ...


@dataclass(frozen=True, slots=True)
class TextEntry:
    """Lower-cased words and normalised text of a record, for ``~``."""

    words: frozenset[str]
    text: str  # words joined by single spaces, for phrase search
    title_words: frozenset[str]
    title_text: str


Predicate = Callable[[ContentRecord, CqlContext], bool]


def words_of(text: str) -> list[str]:
    """Split like a search index does: runs of letters, digits and underscores, lower-cased."""
    out: list[str] = []
    current: list[str] = []
    for ch in text.lower():
        if ch.isalnum() or ch == "_":
            current.append(ch)
        elif current:
            out.append("".join(current))
            current = []
    if current:
        out.append("".join(current))
    return out


def compile_query(query: Query) -> Predicate:
    """Turn the AST into one predicate; adds the implicit ``status = current``."""
    predicate = _compile(query.where)
    if _mentions_status(query.where):
        return predicate
    return lambda record, ctx: record.status == "current" and predicate(record, ctx)


def _mentions_status(node: Node) -> bool:
    if isinstance(node, Clause):
        return node.field == "status"
    if isinstance(node, Not):
        return _mentions_status(node.operand)
    return _mentions_status(node.left) or _mentions_status(node.right)


def _compile(node: Node) -> Predicate:
    if isinstance(node, And):
        left, right = _compile(node.left), _compile(node.right)
        return lambda r, c: left(r, c) and right(r, c)
    if isinstance(node, Or):
        left, right = _compile(node.left), _compile(node.right)
        return lambda r, c: left(r, c) or right(r, c)
    if isinstance(node, Not):
        inner = _compile(node.operand)
        return lambda r, c: not inner(r, c)
    return _compile_clause(node)


def _negate_if(op: str, predicate: Predicate) -> Predicate:
    if op in ("!=", "not in", "!~"):
        return lambda r, c: not predicate(r, c)
    return predicate


def _plain(values: Iterable[Value], field: str) -> list[str]:
    out = []
    for value in values:
        if value.function is not None:
            raise CqlError(f"the function '{value.text}' cannot be used with '{field}'")
        out.append(value.text)
    return out


def _compile_clause(clause: Clause) -> Predicate:
    field, op = clause.field, clause.op
    if field in ("lastmodified", "created"):
        return _compile_date(clause)
    if field in ("title", "text") and op in ("~", "!~"):
        (term,) = _plain(clause.values, field)
        matcher = _text_matcher(term, title_only=field == "title")
        return _negate_if(op, matcher)
    wanted = _plain(clause.values, field)
    lowered = {w.lower() for w in wanted}
    predicate: Predicate
    if field == "space":
        predicate = lambda r, c: r.space_key.lower() in lowered  # noqa: E731
    elif field == "type":
        predicate = lambda r, c: r.type in lowered  # noqa: E731
    elif field == "status":
        predicate = lambda r, c: r.status in lowered  # noqa: E731
    elif field == "id":
        ids = set(wanted)
        predicate = lambda r, c: r.id in ids  # noqa: E731
    elif field == "parent":
        ids = set(wanted)
        predicate = lambda r, c: r.parent_id in ids  # noqa: E731
    elif field == "ancestor":
        ids = set(wanted)
        predicate = lambda r, c: any(a in ids for a in c.ancestor_ids(r))  # noqa: E731
    elif field == "label":
        predicate = lambda r, c: any(label.lower() in lowered for label in r.labels)  # noqa: E731
    elif field == "title":
        predicate = lambda r, c: r.title.lower() in lowered  # noqa: E731
    elif field in ("creator", "contributor"):

        def predicate(r: ContentRecord, c: CqlContext) -> bool:
            accounts: set[str] = set()
            for value in wanted:
                accounts |= c.user_ids(value)
            if field == "creator":
                return r.created_by in accounts
            return r.created_by in accounts or r.updated_by in accounts

    else:  # pragma: no cover - FIELD_OPS and this chain list the same fields
        raise CqlError(f"No field exists with the name: {field}")
    return _negate_if(op, predicate)


def _text_matcher(term: str, *, title_only: bool) -> Predicate:
    phrases: list[str] = []
    rest = term
    while '"' in rest:
        before, _, after = rest.partition('"')
        phrase, closed, remainder = after.partition('"')
        if not closed:
            raise CqlError(f"unbalanced quote in search term '{term}'")
        phrases.append(" ".join(words_of(phrase)))
        rest = before + " " + remainder
    exact: list[str] = []
    prefixes: list[str] = []
    for raw in rest.split():
        words = words_of(raw)
        if raw.endswith("*") and len(words) == 1:
            prefixes.append(words[0])
        else:
            exact.extend(words)
    if not (phrases or exact or prefixes):
        raise CqlError(f"the search term '{term}' has no words")

    def matches(record: ContentRecord, ctx: CqlContext) -> bool:
        entry = ctx.text_of(record)
        words = entry.title_words if title_only else entry.words
        text = entry.title_text if title_only else entry.text
        if any(w not in words for w in exact):
            return False
        if any(not any(w.startswith(p) for w in words) for p in prefixes):
            return False
        return all(f" {p} " in f" {text} " for p in phrases)

    return matches


# ---------------------------------------------------------------- dates

_DATE_FORMATS = (
    ("%Y-%m-%d %H:%M", timedelta(minutes=1)),
    ("%Y/%m/%d %H:%M", timedelta(minutes=1)),
    ("%Y-%m-%d", timedelta(days=1)),
    ("%Y/%m/%d", timedelta(days=1)),
)
_UNITS = {"y": 365 * 24 * 60, "w": 7 * 24 * 60, "d": 24 * 60, "h": 60, "m": 1}


def _offset(text: str) -> timedelta:
    """'-4w', '+1d', '2h', '-1M' (months as 30 days)."""
    if not text:
        return timedelta()
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if len(body) < 2 or not body[:-1].isdigit():
        raise CqlError(f"bad date offset '{text}'")
    unit = body[-1]
    minutes = 30 * 24 * 60 if unit == "M" else _UNITS.get(unit.lower())
    if minutes is None:
        raise CqlError(f"bad date offset unit in '{text}'")
    return timedelta(minutes=sign * int(body[:-1]) * minutes)


def date_interval(value: Value, zone: tzinfo, now: datetime) -> tuple[datetime, datetime]:
    """The [start, end) a date value denotes, in UTC-aware datetimes."""
    if value.function is not None:
        if value.function not in DATE_FUNCTIONS:
            raise CqlError(f"unknown date function '{value.text}'")
        local_now = now.astimezone(zone) + _offset(value.args[0] if value.args else "")
        if value.function == "now":
            start = local_now.replace(second=0, microsecond=0)
            return start, start + timedelta(minutes=1)
        day = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
        if value.function == "startofday":
            return day, day + timedelta(minutes=1)
        end = day + timedelta(days=1) - timedelta(minutes=1)
        return end, end + timedelta(minutes=1)
    for fmt, width in _DATE_FORMATS:
        try:
            naive = datetime.strptime(value.text.strip(), fmt)
        except ValueError:
            continue
        start = naive.replace(tzinfo=zone)
        return start, start + width
    raise CqlError(
        f'\'{value.text}\' is not a date; use "yyyy-MM-dd HH:mm", "yyyy/MM/dd HH:mm", '
        '"yyyy-MM-dd" or "yyyy/MM/dd"'
    )


def _compile_date(clause: Clause) -> Predicate:
    (value,) = clause.values
    date_interval(value, UTC, datetime.now(UTC))  # a bad date fails at parse time, not per page
    attribute = "updated_at" if clause.field == "lastmodified" else "created_at"
    op = clause.op

    def predicate(record: ContentRecord, ctx: CqlContext) -> bool:
        start, end = date_interval(value, ctx.zone, ctx.now())
        moment: datetime = getattr(record, attribute)
        if op == "=":
            return start <= moment < end
        if op == "!=":
            return not start <= moment < end
        if op == ">":
            return moment >= end
        if op == ">=":
            return moment >= start
        if op == "<":
            return moment < start
        return moment < end  # "<="

    return predicate


SortKey = Callable[[ContentRecord], tuple[object, ...]]


def sort_key_function(order: tuple[OrderBy, ...]) -> SortKey:
    """A key for ``sorted``: ordered fields, then id, so equal keys still page stably.

    Descending fields are negated (timestamps) or inverted (titles) so one ascending sort works
    and a search-after cursor can compare keys directly.
    """

    def key(record: ContentRecord) -> tuple[object, ...]:
        parts: list[object] = []
        for item in order:
            if item.field == "title":
                title = record.title.lower()
                parts.append(Inverted(title) if item.descending else title)
            else:
                moment = record.updated_at if item.field == "lastmodified" else record.created_at
                stamp = moment.timestamp()
                parts.append(-stamp if item.descending else stamp)
        parts.append(int(record.id) if record.id.isdigit() else record.id)
        return tuple(parts)

    return key


class Inverted:
    """Wraps a string so it sorts in reverse."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __lt__(self, other: Inverted) -> bool:
        return self.value > other.value

    def __gt__(self, other: Inverted) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Inverted) and self.value == other.value

    def __hash__(self) -> int:
        return hash(self.value)
