"""Names for the people a page mentions, so "@Alice Smith" is indexed instead of an account id.

Storage XHTML names a mentioned user only by id (``<ri:user ri:account-id="..."/>`` on Cloud,
``ri:userkey`` or ``ri:username`` on Data Center); the converter turns the id into a name when
``ConversionContext.user_names`` knows it. :class:`UserDirectory` is that knowledge for one job:
it pulls the ids out of a page, asks the client only for ids it has not asked about before in
this job, and remembers the answers (unknown users included), so a space of thousands of pages
mentioning the same team costs a handful of requests.

Conversion runs on the pipeline's converter thread, so :meth:`UserDirectory.names_for` blocks
that thread while the event loop does the lookup; the cache makes that rare. Names are cosmetic:
any failure (the site refusing, retries spent, a timeout, the job ending) leaves the ids as they
are and the page converts as before. After a few failed lookups in a row the directory stops
asking for the rest of the job rather than stall every page.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError, Future
from dataclasses import dataclass, field
from typing import Protocol

from confluence_rag.errors import ConfluenceError

logger = logging.getLogger(__name__)

# ``<ri:user .../>`` and its id attributes; attribute values are XML-escaped in storage format.
_USER_TAG = re.compile(r"<ri:user\b[^>]*>", re.IGNORECASE)
_ID_ATTR = re.compile(
    r"""\bri:(account-id|userkey|username)\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE
)
# Lookups that fail in a row before the directory gives up for the job.
MAX_FAILURES = 3


class UserNameSource(Protocol):
    """What the directory needs from the client (``ConfluenceClient``)."""

    async def user_names(
        self, ids: Iterable[str], *, usernames: Iterable[str] = ()
    ) -> dict[str, str]: ...

    @property
    def user_lookup_denied(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Mentions:
    """The ids a page mentions users by: account ids and user keys (``ids``) and usernames.

    Each ``ri:user`` counts once, by the id the converter looks its name up by: the account id,
    else the user key, else the username.
    """

    ids: frozenset[str] = field(default_factory=frozenset)
    usernames: frozenset[str] = field(default_factory=frozenset)

    def __bool__(self) -> bool:
        return bool(self.ids or self.usernames)


def find_mentions(storage: str | None) -> Mentions:
    """Pull the mention ids out of storage XHTML. Pure; malformed markup yields what it can."""
    if not storage or "ri:user" not in storage:
        return Mentions()
    ids: set[str] = set()
    usernames: set[str] = set()
    for tag in _USER_TAG.finditer(storage):
        found: dict[str, str] = {}
        for attr in _ID_ATTR.finditer(tag.group(0)):
            value = " ".join(html.unescape(attr.group(2) or attr.group(3) or "").split())
            if value:
                found.setdefault(attr.group(1).lower(), value)
        if "account-id" in found:
            ids.add(found["account-id"])
        elif "userkey" in found:
            ids.add(found["userkey"])
        elif "username" in found:
            usernames.add(found["username"])
    return Mentions(frozenset(ids), frozenset(usernames))


class UserDirectory:
    """One job's cache of display names. Build it on the event loop (it remembers the loop);
    call :meth:`names_for` from the converter thread(s).

    ``timeout`` bounds how long one page may wait for its lookup (seconds). ``note`` gets one
    line for the job's log when names will be missing (the site refuses lookups, or they keep
    failing), so a reader of the job sees why mentions show ids.
    """

    def __init__(
        self,
        client: UserNameSource,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        timeout: float = 60.0,
        note: Callable[[str], None] | None = None,
    ) -> None:
        self._client = client
        self._note = note
        self._told_denied = False
        self._loop = loop or asyncio.get_running_loop()
        self._loop_thread = threading.get_ident() if loop is None else None
        self._timeout = timeout
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._asked: set[str] = set()  # ids and usernames asked about, known or not
        self._in_flight: dict[str, Future[None]] = {}
        self._failures = 0
        self.lookups = 0  # calls to the client, for tests and logs

    @property
    def enabled(self) -> bool:
        return self._failures < MAX_FAILURES

    def names_for(self, storage: str | None) -> dict[str, str]:
        """``{id: display name}`` for the users ``storage`` mentions that have names.

        Blocks the calling (converter) thread while ids nobody asked about yet are looked up,
        or while another thread's lookup of them is in flight; never raises for a failed
        lookup. On the event loop's own thread it answers from the cache only.
        """
        mentions = find_mentions(storage)
        if not mentions:
            return {}
        wanted = mentions.ids | mentions.usernames
        # on the loop's own thread a lookup could never run while we wait for it
        on_loop = threading.get_ident() == self._loop_thread
        with self._lock:
            if self.enabled and not on_loop:
                new = Mentions(mentions.ids - self._asked, mentions.usernames - self._asked)
                if new:
                    try:
                        future = asyncio.run_coroutine_threadsafe(self._lookup(new), self._loop)
                    except RuntimeError:  # the loop is closed: the job is over
                        return self._known(wanted)
                    self._asked |= new.ids | new.usernames
                    for ident in new.ids | new.usernames:
                        self._in_flight[ident] = future
            waits = (
                set() if on_loop else {self._in_flight[i] for i in wanted if i in self._in_flight}
            )
        for future in waits:
            self._wait(future)
        with self._lock:
            return self._known(wanted)

    # ------------------------------------------------------------------ internals

    def _known(self, wanted: frozenset[str]) -> dict[str, str]:
        return {ident: self._names[ident] for ident in wanted if ident in self._names}

    async def _lookup(self, missing: Mentions) -> None:
        self.lookups += 1
        try:
            names = await self._client.user_names(
                sorted(missing.ids), usernames=sorted(missing.usernames)
            )
        except ConfluenceError as error:
            self._failed(missing, error.message)
            return
        finally:
            with self._lock:
                for ident in missing.ids | missing.usernames:
                    self._in_flight.pop(ident, None)
        with self._lock:
            self._names.update(names)
            self._failures = 0
        if self._client.user_lookup_denied and not self._told_denied:
            self._told_denied = True
            self._tell(
                "Confluence refused to look users up (403): mentions show user ids instead of "
                "names. Allow this account to view user profiles, then crawl again."
            )

    def _wait(self, future: Future[None]) -> None:
        """Wait for a lookup on the loop, in short slices: a loop that stops (the job ended)
        must not leave this thread waiting out the whole timeout."""
        deadline = time.monotonic() + self._timeout
        while True:
            try:
                future.result(timeout=0.25)
                return
            except TimeoutError:
                if time.monotonic() < deadline and self._loop.is_running():
                    continue
                if future.cancel():  # the first waiter to give up counts the failure
                    self._failed(None, f"no answer within {self._timeout:g} s")
                return
            except CancelledError:  # given up by another waiter, or the loop shut down
                return
            except Exception:  # a bug, not a site failure: loud, but the page still converts
                logger.exception("looking up mentioned users failed")
                self._failed(None, "unexpected error")
                return

    def _failed(self, missing: Mentions | None, reason: str) -> None:
        with self._lock:
            self._failures += 1
            gave_up = self._failures == MAX_FAILURES
        who = "mentioned users"
        if missing is not None:
            who = f"{len(missing.ids) + len(missing.usernames)} mentioned user(s)"
        logger.warning(
            "could not look up the names of %s: %s; their mentions keep the ids%s",
            who,
            reason,
            "; no more lookups in this job" if gave_up else "",
        )
        if gave_up:
            self._tell(f"looking up mentioned users keeps failing ({reason}): mentions keep ids")

    def _tell(self, message: str) -> None:
        """One line for the job log, written on the loop (progress is not thread-safe)."""
        if self._note is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._note(message)
        else:
            try:
                self._loop.call_soon_threadsafe(self._note, message)
            except RuntimeError:  # the loop is closed: the job is over
                pass
