"""PostgreSQL's value codec: the ``Dialect`` the shared store code uses on PostgreSQL, and the
pgvector adapter for psycopg.

Rows are dicts (``psycopg.rows.dict_row``).

Vectors travel in pgvector's binary format (uint16 dimension, uint16 unused, big-endian
float32s), which is far cheaper than the text form for 384+ floats per chunk.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from psycopg import AsyncConnection
from psycopg.adapt import Buffer, Dumper, Loader
from psycopg.pq import Format
from psycopg.types import TypeInfo
from psycopg.types.json import Jsonb

from confluence_rag.errors import StoreError
from confluence_rag.store.dialect import Dialect, Plan
from confluence_rag.store.postgres_schema import set_dimension_sql
from confluence_rag.store.values import json_ready, utc

T = TypeVar("T")
Conn = AsyncConnection[Any]


# --- vectors ----------------------------------------------------------------------------------
class _VectorBinaryDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: Any) -> Buffer:
        array = np.ascontiguousarray(obj, dtype=">f4").reshape(-1)
        return struct.pack(">HH", array.shape[0], 0) + array.tobytes()


class _VectorBinaryLoader(Loader):
    format = Format.BINARY

    def load(self, data: Buffer) -> np.ndarray:
        (dim,) = struct.unpack_from(">H", data)
        return np.frombuffer(bytes(data), dtype=">f4", count=dim, offset=4).astype(np.float32)


class _VectorTextLoader(Loader):
    format = Format.TEXT

    def load(self, data: Buffer) -> np.ndarray:
        text = bytes(data).strip()[1:-1]
        return np.array(text.split(b",") if text else [], dtype=np.float32)


async def register_vector(conn: AsyncConnection[Any]) -> None:
    """Teach this connection to send numpy arrays as ``vector`` and read ``vector`` as numpy."""
    info = await TypeInfo.fetch(conn, "vector")
    if info is None:
        raise StoreError(
            "the PostgreSQL database has no 'vector' type: install pgvector and run "
            "CREATE EXTENSION vector (managed services: enable the 'vector' extension)"
        )
    dumper = type("VectorDumper", (_VectorBinaryDumper,), {"oid": info.oid})
    conn.adapters.register_dumper(np.ndarray, dumper)
    conn.adapters.register_loader(info.oid, _VectorBinaryLoader)
    conn.adapters.register_loader(info.oid, _VectorTextLoader)


# --- the dialect ------------------------------------------------------------------------------
class PostgresDialect(Dialect):
    """jsonb columns (parsed by psycopg on read), timestamptz normalised to UTC both ways (so a
    naive datetime is UTC whatever the session's TimeZone), real booleans, ``= ANY(array)``
    for lists, and row locks: several processes write one database at once."""

    name = "postgres"
    true = "true"
    false = "false"
    key_share_lock = " FOR KEY SHARE"
    update_lock = " FOR UPDATE"

    def to_json(self, value: Any) -> Jsonb:
        return Jsonb(json_ready(value))

    def from_json(self, value: Any, default: Any) -> Any:
        return default if value is None else value

    def to_time(self, value: datetime | None) -> datetime | None:
        return utc(value)

    def from_time(self, value: Any) -> datetime | None:
        return utc(value)

    def to_bool(self, value: Any) -> bool:
        return bool(value)

    def from_vector(self, value: Any) -> np.ndarray:
        return np.asarray(value, dtype=np.float32)

    def in_list(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def live(self, alias: str) -> str:
        return f"NOT {alias}.is_deleted"  # the form the partial index ix_pages_live names

    def first_per(self, column: str) -> str:
        return f"DISTINCT ON ({column}) "

    def resize_vectors(self, dimension: int) -> tuple[str, ...]:
        return set_dimension_sql(dimension)


POSTGRES = PostgresDialect()


def pg_sql(query: str) -> str:
    """Shared SQL (``?`` placeholders) as psycopg takes it (``%s``)."""
    if "%" in query:
        raise ValueError("shared SQL must not contain '%'")
    return query.replace("?", "%s")


async def fetchone(conn: Conn, query: Any, params: Any = ()) -> dict[str, Any] | None:
    cur = await conn.execute(query, params)
    row: dict[str, Any] | None = await cur.fetchone()
    return row


async def fetchall(conn: Conn, query: Any, params: Any = ()) -> list[dict[str, Any]]:
    cur = await conn.execute(query, params)
    rows: list[dict[str, Any]] = await cur.fetchall()
    return rows


async def run_plan(conn: Conn, plan: Plan[T]) -> T:
    """Run a shared plan (``bookkeeping``, ``page_reads``) on this connection, in whatever
    transaction the caller holds."""
    try:
        query = next(plan)
        while True:
            cur = await conn.execute(pg_sql(query.sql), query.params)
            if query.returns == "one":
                result: Any = await cur.fetchone()
            elif query.returns == "all":
                result = await cur.fetchall()
            else:
                result = cur.rowcount
            query = plan.send(result)
    except StopIteration as done:
        return done.value
