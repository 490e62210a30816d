"""Search query text -> what to look for and how to narrow it. Pure, total: never raises.

    parsed = parse_query('rollback "argo cd" -helm space:OPS after:2026-01-01')
    parsed.text      # 'rollback argo cd'   (what the retrievers search)
    parsed.phrases   # ('argo cd',)         (a hit holds each, verbatim, case and spacing aside)
    parsed.excluded  # ('helm',)            (a hit holds none of these words or phrases)
    parsed.spaces    # ('OPS',)             ... and labels, types, title words, after / before

Operators: ``"exact phrase"``, ``-word`` / ``-"phrase"``, ``title:word`` / ``title:"words"``,
``space:KEY``, ``label:name``, ``type:page|blogpost``, ``author:name`` (the page's creator; every
word of the name must be in theirs), ``after:YYYY-MM-DD``,
``before:YYYY-MM-DD``; names are case-insensitive, several values of one operator are
alternatives (``space:ENG space:OPS``), except ``title:`` whose words must all be in the title.
Anything else is text: ``error:`` or ``https://...`` are words, a lone ``-`` or an unbalanced
quote is read as plain text. A value that cannot mean anything (``type:wiki``,
``after:yesterday``) is reported in ``problems``, for the caller to turn into a clear error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from confluence_rag.records import ChunkRow

OPERATORS = ("title", "space", "label", "type", "author", "after", "before")
PAGE_TYPES = ("page", "blogpost")

# A token: optional "-", optional "name:", then a quoted run or a bare run of non-spaces.
_TOKEN = re.compile(r'(?P<neg>-)?(?:(?P<op>[A-Za-z]+):)?(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+))')


@dataclass(frozen=True, slots=True)
class ParsedQuery:
    text: str
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()
    title_words: tuple[str, ...] = ()
    spaces: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    after: datetime | None = None
    before: datetime | None = None
    problems: tuple[str, ...] = ()

    @property
    def has_operators(self) -> bool:
        listed = (self.phrases, self.excluded, self.title_words, self.spaces, self.labels)
        return any((*listed, self.types, self.authors)) or (self.after, self.before) != (None, None)


def _day(value: str, name: str, problems: list[str]) -> datetime | None:
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        problems.append(f"{name}: needs a date like 2026-01-31, got {value!r}")
        return None


def parse_query(raw: str) -> ParsedQuery:
    """``raw`` read as words, phrases and operators (see the module docstring)."""
    words: list[str] = []
    found: dict[str, list[str]] = {name: [] for name in (*OPERATORS, "phrase", "excluded")}
    problems: list[str] = []
    after: datetime | None = None
    before: datetime | None = None
    for match in _TOKEN.finditer(raw or ""):
        negative, op = bool(match["neg"]), (match["op"] or "").lower()
        quoted = match["quoted"]
        # a stray quote (an unbalanced one) is not part of the word
        value = " ".join((quoted if quoted is not None else match["bare"].strip('"')).split())
        if op and op not in OPERATORS:  # "error:", "https:": plain words
            value, op = f"{match['op']}:{value}", ""
        if negative and (op or not value[:1].isalpha()):
            # "-space:X", "-1", "--verbose", "-": text as typed (a pasted line keeps them)
            words.append(match.group(0).strip('"'))
            continue
        if not value:
            continue
        if negative:
            found["excluded"].append(value.lower())
        elif op == "title":
            found["title"].extend(value.lower().split())
            words.append(value)  # title words also find the candidates
        elif op in ("space", "label"):
            found[op].append(value)
        elif op == "author":
            found["author"].append(value.lower())
        elif op == "type":
            lowered = value.lower()
            if lowered in PAGE_TYPES:
                found["type"].append(lowered)
            else:
                problems.append(f"type: must be page or blogpost, got {value!r}")
        elif op in ("after", "before"):
            moment = _day(value, op, problems)
            after, before = (moment, before) if op == "after" else (after, moment)
        else:
            if quoted is not None and " " in value:
                found["phrase"].append(value.lower())
            words.append(value)
    return ParsedQuery(
        text=" ".join(word for word in words if word),
        phrases=tuple(dict.fromkeys(found["phrase"])),
        excluded=tuple(dict.fromkeys(found["excluded"])),
        title_words=tuple(dict.fromkeys(found["title"])),
        spaces=tuple(dict.fromkeys(found["space"])),
        labels=tuple(dict.fromkeys(found["label"])),
        types=tuple(dict.fromkeys(found["type"])),
        authors=tuple(dict.fromkeys(found["author"])),
        after=after,
        before=before,
        problems=tuple(problems),
    )


def words_pattern(phrase: str, whole_words: bool) -> re.Pattern[str]:
    """``phrase``'s words in order with any whitespace between them, case aside; with
    ``whole_words``, not inside longer words."""
    body = r"\s+".join(re.escape(word) for word in phrase.split())
    return re.compile(rf"(?<!\w){body}(?!\w)" if whole_words else body, re.IGNORECASE)


def _holds(text: str, phrase: str) -> bool:
    """Whether ``text`` holds ``phrase`` as whole words, case and spacing aside."""
    return words_pattern(phrase, whole_words=True).search(text) is not None


def admits(parsed: ParsedQuery, row: ChunkRow) -> bool:
    """Whether a hit passes the operators the store's filters do not apply: phrases, excluded
    words, title words, authors and ``before:``."""
    if not all(_holds(row.text, phrase) for phrase in parsed.phrases):
        return False
    if any(_holds(row.text, word) or _holds(row.title, word) for word in parsed.excluded):
        return False
    if not all(_holds(row.title, word) for word in parsed.title_words):
        return False
    if parsed.authors and not any(
        all(_holds(row.author or "", word) for word in name.split()) for name in parsed.authors
    ):
        return False
    return parsed.before is None or (row.updated_at is not None and row.updated_at < parsed.before)
