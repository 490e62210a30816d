"""The pure part of walking a paginated listing: which URL comes next, at what ``limit``.

Rules (see DESIGN, "Confluence API: facts the client must encode"):

- Follow ``_links.next`` as given: it already carries ``cql``, ``expand`` and (Cloud) the
  ``cursor``. Parameters are only ever *replaced in place*, never appended, so ``expand`` is
  never duplicated.
- Never decide the end from a short page: servers cap ``limit`` silently. The end is a missing
  ``next`` or an empty page.
- Offset links (Data Center) are checked: the next ``start`` must be the ``start`` we sent plus
  the results we received. Some versions get it wrong (re-reading or skipping); we then compute
  it ourselves. Cursor links (Cloud) are opaque and left alone.
- A 504 on an expanded listing means the page was too heavy: halve ``limit`` (down to 1) and ask
  again from the same position. After a run of successes, probe a doubled limit again (up to what
  the caller asked for), so one transient 504 does not slow the rest of a large walk; probes
  that keep failing are made ever more rarely.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

# Successful pages at a reduced limit before probing a doubled one; a probe that fails doubles
# the wait, up to the maximum.
GROW_AFTER_SUCCESSES = 4
MAX_GROW_AFTER = 256


def query_param(url: str, name: str) -> str | None:
    """The first value of query parameter ``name`` in ``url`` (None if absent)."""
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if key == name:
            return value
    return None


def int_param(url: str, name: str) -> int | None:
    value = query_param(url, name)
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


def with_params(url: str, **values: str | int) -> str:
    """``url`` with the given query parameters replaced where they occur (first occurrence,
    others of the same name dropped) and appended where they do not. Order is kept."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pending = {name: str(value) for name, value in values.items()}
    out: list[tuple[str, str]] = []
    replaced: set[str] = set()
    for key, value in pairs:
        if key in pending:
            if key in replaced:
                continue
            out.append((key, pending[key]))
            replaced.add(key)
        else:
            out.append((key, value))
    out.extend((name, value) for name, value in pending.items() if name not in replaced)
    return urlunsplit(parts._replace(query=urlencode(out)))


def is_cursor_link(url: str) -> bool:
    """Cloud's search pages by an opaque cursor; its ``start`` is informational only."""
    return query_param(url, "cursor") is not None


@dataclass(frozen=True, slots=True)
class NextDecision:
    url: str | None  # None: the walk is complete
    corrected_start: int | None = None  # the start we used instead of the server's, if any


def next_page_url(
    *, sent_url: str, next_url: str | None, received: int, limit: int | None = None
) -> NextDecision:
    """Where to go after a response to ``sent_url`` that held ``received`` results.

    ``next_url`` is the server's ``_links.next`` already made absolute. ``limit`` (when given)
    replaces the link's ``limit``, which is how a reduced limit survives from page to page.
    """
    if received == 0 or not next_url:
        return NextDecision(url=None)
    url = next_url
    corrected: int | None = None
    if not is_cursor_link(url):
        expected = (int_param(sent_url, "start") or 0) + received
        given = int_param(url, "start")
        if given != expected:
            url = with_params(url, start=expected)
            corrected = expected
    if limit is not None and int_param(url, "limit") != limit:
        url = with_params(url, limit=limit)
    return NextDecision(url=url, corrected_start=corrected)


class LimitGovernor:
    """The ``limit`` one expanded walk asks for: halved on a 504, probed upward after successes.

    ``requested`` is what the caller wanted. ``cap`` is a silent server cap, learnt when the
    envelope's ``limit`` is below the one we sent: halving starts from what the server really
    applied rather than from a number it was capping anyway, and growth never goes above it.

    Growing back matters because a 504 may be a passing hiccup, not a page that is too heavy:
    after ``grow_after`` successes the limit doubles. A doubled limit that times out again
    doubles ``grow_after`` too, so a gateway that really cannot serve the bigger page is probed
    ever more rarely (the overhead fades away), while one transient 504 costs only a few
    smaller pages.
    """

    def __init__(self, requested: int) -> None:
        self.requested = max(1, requested)
        self.current = self.requested
        self.cap: int | None = None
        self.reductions = 0
        self.grow_after = GROW_AFTER_SUCCESSES
        self._successes = 0
        self._probing = False

    @property
    def ceiling(self) -> int:
        return self.requested if self.cap is None else min(self.requested, self.cap)

    def note_response(self, sent_limit: int | None, server_limit: int | None) -> None:
        """A page came back fine; ``server_limit`` is its envelope's ``limit``."""
        if sent_limit is not None and server_limit is not None and 0 < server_limit < sent_limit:
            self.cap = server_limit if self.cap is None else min(self.cap, server_limit)
        if self._probing:
            self._probing = False
            self.grow_after = GROW_AFTER_SUCCESSES  # the bigger page went through
        if self.reductions and self.current < self.ceiling:
            self._successes += 1
            if self._successes >= self.grow_after:
                self.current = min(self.ceiling, self.current * 2)
                self._successes = 0
                self._probing = True

    def shrink(self, sent_limit: int | None) -> int | None:
        """The halved limit after a 504, or None when already at 1 (plain retry then)."""
        effective = min(sent_limit if sent_limit is not None else self.current, self.ceiling)
        if self._probing:
            self._probing = False
            self.grow_after = min(MAX_GROW_AFTER, self.grow_after * 2)
        if effective <= 1:
            return None
        self.current = max(1, effective // 2)
        self._successes = 0
        self.reductions += 1
        return self.current

    def limit_for_next(self) -> int | None:
        """The limit to force onto the next link, or None to leave the server's link alone.

        Once a walk has shrunk, every later link carries our limit: the server's links echo the
        reduced value we sent, so leaving them alone would never grow back."""
        return self.current if self.reductions else None
