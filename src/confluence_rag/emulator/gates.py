"""Gates: hold chosen requests at the emulator's edge until the test lets them through.

A test that must act *in the middle* of a crawl or sync (cancel it, kill or freeze a worker,
edit the space) parks the crawl at a known point instead of hoping it is still running: no
latency or sleep chosen to be "slow enough", which a busy machine always defeats one day.

::

    gate = server.state.gates.add(query="body.storage", after=2)   # 2 body fetches pass
    ...start the crawl...
    gate.wait_held(1)          # blocks until a 3rd body fetch is parked (TimeoutError after 60 s)
    ...act while the crawl is provably mid-way...
    gate.release()             # open: every parked and later request goes through
    gate.release(1)            # or let just one more through and keep holding the rest

A gate matches a request when every given criterion holds: ``method`` equals, ``path`` is a
substring of the path, ``query`` a substring of the URL-decoded query string. ``after`` lets
that many matching requests through before it starts holding; ``times`` holds at most that
many (later ones pass: "the first answer never comes, the retry gets one"). Several gates may
match one
request; it waits for each in turn. A parked request keeps its connection open (the client
sees a slow server); one whose client gave up is answered into the void once released. A held
request also keeps its client's concurrency slot (``max_concurrent_requests_per_site``): hold
fewer requests than the client runs at once, or its other calls (user lookups) wait forever.
And the client's own timeout (``http_timeout_seconds``, 30 s) still runs: a request held longer
times out and is retried.
``EmulatorServer.stop()`` opens every gate, so a test that forgets does not hang the teardown.

Thread-safe: requests park on the server's event loop (other requests keep flowing) while the
test releases from its own thread or loop (``await gate.held_async(1)`` in async tests).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import unquote_plus

DEFAULT_WAIT_S = 60.0  # generous: a busy 2-core machine is slow, never this slow


@dataclass(eq=False, slots=True)
class Gate:
    """One gate; build it with ``Gates.add``. Counters: ``passed`` (went through), ``held``
    (ever parked), ``waiting`` (parked right now)."""

    method: str | None = None
    path: str | None = None
    query: str | None = None
    times: int | None = None
    # None: open. Otherwise how many more matching requests may pass before one is parked.
    _credits: int | None = 0
    passed: int = 0
    held: int = 0
    _waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = field(
        default_factory=deque
    )
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def matches(self, method: str, path: str, query: str) -> bool:
        if self.method is not None and method.upper() != self.method.upper():
            return False
        if self.path is not None and self.path not in path:
            return False
        return self.query is None or self.query in query

    @property
    def is_open(self) -> bool:
        return self._credits is None

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._waiters)

    def release(self, count: int | None = None) -> None:
        """Let ``count`` more requests through (parked ones first, oldest first), or with no
        count open the gate for good."""
        with self._changed:
            if count is None:
                self._credits = None
            elif self._credits is not None:
                if count < 0:
                    raise ValueError("count must not be negative")
                self._credits += count
            while self._waiters and (self._credits is None or self._credits > 0):
                if self._credits is not None:
                    self._credits -= 1
                loop, future = self._waiters.popleft()
                self.passed += 1
                _resolve(loop, future)
            self._changed.notify_all()

    def close(self) -> None:
        """Hold every matching request from now on (until the next ``release``)."""
        with self._changed:
            self._credits = 0

    def wait_held(self, count: int = 1, timeout: float = DEFAULT_WAIT_S) -> None:
        """Block until ``count`` requests in all have been parked here; TimeoutError after
        ``timeout`` seconds with what the gate saw."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.held >= count, timeout=timeout):
                raise TimeoutError(
                    f"gate {self!r}: {self.held} request(s) held, {self.passed} passed, "
                    f"waited {timeout} s for {count} held"
                )

    async def held_async(self, count: int = 1, timeout: float = DEFAULT_WAIT_S) -> None:
        """``wait_held`` for async tests: waits in a thread so the test's loop keeps running."""
        await asyncio.to_thread(self.wait_held, count, timeout)

    async def _pass(self) -> None:
        """Called by the emulator for a matching request: return when it may proceed."""
        loop = asyncio.get_running_loop()
        with self._changed:
            spent = self.times is not None and self.held >= self.times
            if spent or self._credits is None or self._credits > 0:
                if self._credits is not None and not spent:
                    self._credits -= 1
                self.passed += 1
                return
            future: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, future))
            self.held += 1
            self._changed.notify_all()
        try:
            await future
        except asyncio.CancelledError:
            with self._changed:
                if (loop, future) in self._waiters:
                    self._waiters.remove((loop, future))
            raise

    def __repr__(self) -> str:
        criteria = ", ".join(
            f"{name}={value!r}"
            for name, value in (("method", self.method), ("path", self.path), ("query", self.query))
            if value is not None
        )
        return f"Gate({criteria or 'every request'})"


def _resolve(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    def resolve() -> None:
        if not future.done():
            future.set_result(None)

    try:
        loop.call_soon_threadsafe(resolve)
    except RuntimeError:  # that loop is closed: the server stopped, nobody waits any more
        pass


class Gates:
    """The gates of one emulator (``state.gates``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._gates: list[Gate] = []

    def add(
        self,
        *,
        path: str | None = None,
        query: str | None = None,
        method: str | None = None,
        after: int = 0,
        times: int | None = None,
    ) -> Gate:
        """A closed gate for the matching requests, letting the first ``after`` through and
        holding at most ``times`` of them (None: every later one)."""
        if after < 0 or (times is not None and times < 0):
            raise ValueError("after and times must not be negative")
        gate = Gate(method=method, path=path, query=query, times=times, _credits=after)
        with self._lock:
            self._gates.append(gate)
        return gate

    def remove(self, gate: Gate) -> None:
        """Open ``gate`` (nothing stays parked behind it) and forget it."""
        gate.release()
        with self._lock:
            self._gates = [g for g in self._gates if g is not gate]

    def release_all(self) -> None:
        with self._lock:
            gates = list(self._gates)
        for gate in gates:
            gate.release()

    async def pass_through(self, method: str, path: str, raw_query: str) -> None:
        """Wait at every gate that matches this request (a no-op without gates)."""
        with self._lock:
            gates = list(self._gates)
        if not gates:
            return
        query = unquote_plus(raw_query)
        for gate in gates:
            if gate.matches(method, path, query):
                await gate._pass()
