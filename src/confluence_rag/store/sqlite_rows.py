"""SQLite's value codec: the ``Dialect`` the shared store code uses on SQLite, and vector blobs.

Times are stored as fixed-width UTC ISO-8601 text (``values.iso_time``) so text order is time
order; JSON columns hold compact JSON text; booleans are 0/1; vectors are little-endian float32
BLOBs (the source of truth the in-memory matrix is loaded from).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np

from confluence_rag.store.dialect import Dialect, Plan, Query, run_sync
from confluence_rag.store.values import iso_time, json_ready

T = TypeVar("T")


def db_json(value: Any) -> str:
    return json.dumps(json_ready(value), separators=(",", ":"), ensure_ascii=False)


def py_json(value: str | None, default: Any = None) -> Any:
    return default if value is None else json.loads(value)


def db_vector(vector: np.ndarray) -> bytes:
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def py_vector(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def marks(n: int) -> str:
    return ",".join("?" * n)


class SQLiteDialect(Dialect):
    name = "sqlite"
    true = "1"
    false = "0"

    def to_json(self, value: Any) -> str:
        return db_json(value)

    def from_json(self, value: Any, default: Any) -> Any:
        return py_json(value, default)

    def to_time(self, value: datetime | None) -> str | None:
        return iso_time(value)

    def from_time(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value)

    def to_bool(self, value: Any) -> int:
        return int(bool(value))

    def from_vector(self, value: Any) -> np.ndarray:
        return py_vector(value)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} IN ({marks(len(values))})", list(values)


SQLITE = SQLiteDialect()


def run_plan(conn: sqlite3.Connection, plan: Plan[T]) -> T:
    """Run a shared plan (``bookkeeping``, ``page_reads``) on this connection, in whatever
    transaction the caller holds."""

    def execute(query: Query) -> Any:
        cursor = conn.execute(query.sql, query.params)
        if query.returns == "one":
            return cursor.fetchone()
        if query.returns == "all":
            return cursor.fetchall()
        return cursor.rowcount

    return run_sync(plan, execute)
