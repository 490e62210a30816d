"""What differs between SQLite and PostgreSQL in the SQL both stores share, and the statements
that shared code hands to a backend.

Why this shape: the bookkeeping tables (sources, credentials, jobs, index identity, skipped
pages) and the page reads mean the same on both backends, but SQLite runs synchronously on its
writer/reader threads while PostgreSQL runs async psycopg. So the shared code is written once as
*plans*: generators that ``yield`` a ``Query`` and receive its result (a row, all rows, or the
row count), and decide what to do next in plain Python. Each backend has a thin executor that
runs a plan on its own connection, inside its own transaction:

    row = yield Query("SELECT ... WHERE id = ?", (source_id,), returns="one")

Shared SQL uses ``?`` placeholders (the PostgreSQL executor turns them into ``%s``; shared SQL
never holds a literal ``?`` or ``%``) and asks the ``Dialect`` for the rest: how values are
encoded (SQLite keeps JSON and times as text, PostgreSQL uses jsonb and timestamptz), how a
list of values is matched, and which row locks apply (PostgreSQL has concurrent writers,
SQLite one writer at a time).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeVar

import numpy as np

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Query:
    """One statement of a plan; ``returns`` says what the plan receives back."""

    sql: str
    params: Sequence[Any] = ()
    returns: Literal["one", "all", "rowcount"] = "rowcount"


#: A plan: yields queries, receives their results, returns its value.
Plan = Generator[Query, Any, T]


def run_sync(plan: Plan[T], execute: Any) -> T:
    """Drive ``plan`` with ``execute(query) -> result`` (a synchronous executor)."""
    try:
        query = next(plan)
        while True:
            query = plan.send(execute(query))
    except StopIteration as done:
        return done.value


class Dialect(ABC):
    """Value encoding and SQL fragments of one backend (see the module docstring)."""

    name: str
    #: SQL boolean literals.
    true: str
    false: str
    #: Appended to a SELECT of a source row that must not be deleted before the transaction
    #: ends (PostgreSQL: another process may delete it; SQLite holds the only write lock).
    key_share_lock: str = ""
    #: Appended to a SELECT of a row this transaction will update.
    update_lock: str = ""

    # --- values -------------------------------------------------------------------------------
    @abstractmethod
    def to_json(self, value: Any) -> Any:
        """A JSON column value."""

    @abstractmethod
    def from_json(self, value: Any, default: Any) -> Any:
        """A JSON column read back (``default`` for NULL)."""

    @abstractmethod
    def to_time(self, value: datetime | None) -> Any:
        """A time column value (naive datetimes are UTC)."""

    @abstractmethod
    def from_time(self, value: Any) -> datetime | None:
        """A time column read back, aware and in UTC."""

    @abstractmethod
    def to_bool(self, value: Any) -> Any:
        """A boolean column value."""

    @abstractmethod
    def from_vector(self, value: Any) -> np.ndarray:
        """An embedding column read back as float32."""

    # --- SQL fragments ------------------------------------------------------------------------
    @abstractmethod
    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column`` equals one of ``values``: the fragment and its parameters."""

    def live(self, alias: str) -> str:
        """The page ``alias`` is not soft-deleted (spelt as each backend's indexes expect)."""
        return f"{alias}.is_deleted = {self.false}"

    def first_per(self, column: str) -> str:
        """SELECT prefix keeping one row per ``column`` value ("" when the caller dedupes)."""
        return ""

    def resize_vectors(self, dimension: int) -> tuple[str, ...]:
        """DDL that fits the vector column to a newly recorded model's dimension."""
        return ()
