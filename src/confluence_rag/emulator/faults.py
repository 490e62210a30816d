"""Fault injection: which request fails, and how. Pure decisions; `app.py` renders them.

Fault spec grammar (the ``--faults`` option of ``confluence-rag emulator``)::

    SPEC   := RULE ("," RULE)*
    RULE   := KIND [":" VALUE] ["@" PROB] (";" OPTION)*
    KIND   := 429 | 503 | 500 | 504 | drop | ratelimit403 | latency
    OPTION := path~TEXT        only requests whose path contains TEXT (e.g. path~/content/search)
            | times=N          fire at most N times
            | after=N          let the first N matching requests through
            | retry-after=N    Retry-After seconds for 429/503 (default 1)
            | retry-after=date Retry-After as an HTTP date (now + 1 s) instead of seconds
            | budget=N         for 504 in budget mode: the largest body-expanded limit let through

``VALUE`` is a probability in [0, 1] for every kind except ``latency``, where it is the added
delay in milliseconds and ``@PROB`` the probability (default 1). A kind without a value fires on
every matching request, except ``504``: alone it means *budget mode*, firing only when a request
expands ``body.*`` with an effective ``limit`` above the budget (config ``timeout_budget`` unless
``budget=`` says otherwise), like a real gateway timing out on a large expanded query.

Examples: ``429:0.1,503:0.05,500:0.05,504,drop:0.02,ratelimit403:0.05,latency:2000@0.01``;
``429;times=2;path~/content/search`` (the first two searches get 429).

Kinds: ``429`` Too Many Requests with ``Retry-After`` and ``X-RateLimit-*`` headers; ``503``
with ``Retry-After``; ``500``; ``504``; ``drop`` sends half the response then closes the
connection; ``ratelimit403`` is Data Center's 403 "Rate limit exceeded"; ``latency`` sleeps.

Determinism: every rule draws from its own ``random.Random`` seeded from the emulator seed and
the rule's position, once per matching request, so the same seed and the same request sequence
give the same faults.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Literal

from confluence_rag.errors import InvalidInput

FaultKind = Literal["429", "503", "500", "504", "drop", "ratelimit403", "latency"]
KINDS: tuple[str, ...] = ("429", "503", "500", "504", "drop", "ratelimit403", "latency")


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One rule of the fault spec. ``probability`` None = always, or budget mode for 504."""

    kind: FaultKind
    probability: float | None = None
    latency_ms: float = 0.0
    path: str | None = None
    times: int | None = None
    after: int = 0
    retry_after: int = 1
    retry_after_date: bool = False
    budget: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"unknown fault kind {self.kind!r}; known: {', '.join(KINDS)}")
        if self.probability is not None and not 0.0 <= self.probability <= 1.0:
            raise InvalidInput(f"fault probability must be in [0, 1], not {self.probability}")
        if self.latency_ms < 0 or self.after < 0 or self.retry_after < 0:
            raise InvalidInput("fault latency, after and retry-after must not be negative")
        if self.times is not None and self.times < 0:
            raise InvalidInput("fault times must not be negative")

    @property
    def budget_mode(self) -> bool:
        return self.kind == "504" and self.probability is None


@dataclass(frozen=True, slots=True)
class FaultDecision:
    """What to do to one request: sleep ``latency_s`` first, then fail with ``kind`` (or not)."""

    latency_s: float = 0.0
    kind: FaultKind | None = None
    rule: FaultRule | None = None


def parse_fault_spec(spec: str) -> list[FaultRule]:
    """Parse the grammar in the module docstring; raise InvalidInput naming the bad part."""
    rules: list[FaultRule] = []
    for raw in spec.split(","):
        text = raw.strip()
        if text:
            rules.append(_parse_rule(text))
    return rules


def _parse_rule(text: str) -> FaultRule:
    head, *options = text.split(";")
    head = head.strip()
    prob_text: str | None = None
    if "@" in head:
        head, prob_text = head.split("@", 1)
    kind, _, value = head.partition(":")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise InvalidInput(f"unknown fault kind {kind!r} in {text!r}; known: {', '.join(KINDS)}")
    kwargs: dict[str, object] = {}
    try:
        if kind == "latency":
            if not value:
                raise InvalidInput(f"latency needs milliseconds, e.g. latency:2000 ({text!r})")
            kwargs["latency_ms"] = float(value)
            if prob_text is not None:
                kwargs["probability"] = float(prob_text)
        else:
            if prob_text is not None:
                raise InvalidInput(f"'@' is only for latency: {text!r}")
            if value:
                kwargs["probability"] = float(value)
        for option in options:
            _apply_option(option.strip(), kwargs, text)
    except ValueError as error:
        raise InvalidInput(f"bad number in fault rule {text!r}") from error
    return FaultRule(kind=kind, **kwargs)  # type: ignore[arg-type]


def _apply_option(option: str, kwargs: dict[str, object], text: str) -> None:
    if not option:
        return
    if option.startswith("path~"):
        kwargs["path"] = option[len("path~") :]
        return
    name, sep, value = option.partition("=")
    if not sep:
        raise InvalidInput(f"bad fault option {option!r} in {text!r}")
    name = name.strip().lower()
    value = value.strip()
    if name == "times":
        kwargs["times"] = int(value)
    elif name == "after":
        kwargs["after"] = int(value)
    elif name == "budget":
        kwargs["budget"] = int(value)
    elif name == "retry-after":
        if value.lower() == "date":
            kwargs["retry_after_date"] = True
        else:
            kwargs["retry_after"] = int(value)
    else:
        raise InvalidInput(f"unknown fault option {name!r} in {text!r}")


@dataclass(slots=True)
class _RuleState:
    rule: FaultRule
    rng: random.Random
    matched: int = 0
    fired: int = 0


@dataclass(slots=True)
class FaultInjector:
    """Holds the live rules (tests add and remove them) and decides per request."""

    seed: int
    default_budget: int
    _rules: list[_RuleState] = field(default_factory=list)
    _added: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            # the position in the order of additions seeds the rule: removing one rule does not
            # reshuffle the others' draws
            rng = random.Random(f"{self.seed}:{self._added}:{rule.kind}")
            self._added += 1
            self._rules.append(_RuleState(rule, rng))

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def remove(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules = [state for state in self._rules if state.rule is not rule]

    @property
    def rules(self) -> list[FaultRule]:
        return [state.rule for state in self._rules]

    def fired(self) -> dict[str, int]:
        """How often each kind fired so far."""
        counts: dict[str, int] = {}
        for state in self._rules:
            counts[state.rule.kind] = counts.get(state.rule.kind, 0) + state.fired
        return counts

    def decide(self, path: str, *, body_limit: int | None) -> FaultDecision:
        """Decide for one request. ``body_limit`` is the effective limit of a request that
        expands bodies (None otherwise); only 504 budget rules look at it."""
        latency = 0.0
        with self._lock:
            for state in self._rules:
                rule = state.rule
                if rule.path is not None and rule.path not in path:
                    continue
                if rule.budget_mode:
                    budget = rule.budget if rule.budget is not None else self.default_budget
                    if body_limit is None or body_limit <= budget:
                        continue
                state.matched += 1
                if state.matched <= rule.after:
                    continue
                if rule.times is not None and state.fired >= rule.times:
                    continue
                probability = 1.0 if rule.probability is None else rule.probability
                # draw even when probability is 1 so one rule's draws do not depend on another's
                if state.rng.random() >= probability:
                    continue
                state.fired += 1
                if rule.kind == "latency":
                    latency += rule.latency_ms / 1000.0
                    continue
                return FaultDecision(latency_s=latency, kind=rule.kind, rule=rule)
        return FaultDecision(latency_s=latency)
