"""Backend-neutral value helpers: the clock, UTC times, JSON-ready values, labels, batches and
the embeddings matrix.

Both stores import these; neither imports the other's modules (``sqlite_*`` never imports
``postgres_*`` and vice versa), so a helper both need lives here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from confluence_rag.errors import InvalidInput

# IN (...) lists and batched statements stay at this many values: far below SQLite's default
# limit of 32,766 bound parameters, and small enough to keep one statement short.
BATCH = 500


def now() -> datetime:
    """The store's clock: an aware UTC datetime."""
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC; a naive datetime is taken as UTC (on both backends alike)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_time(value: datetime | None) -> str | None:
    """Fixed-width UTC ISO-8601 text (``2026-11-25T21:31:24.123456+00:00``): text order is
    time order, which SQLite's comparisons rely on; JSON values hold times in this form too."""
    aware = utc(value)
    return None if aware is None else aware.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def json_ready(value: Any) -> Any:
    """``value`` with tuples/sets as lists, mappings as dicts and times as ``iso_time`` text,
    so both backends store (and read back) the same JSON."""
    if isinstance(value, datetime):
        return iso_time(value)
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_ready(v) for v in value]
    return value


def normalise_labels(labels: Any) -> tuple[str, ...]:
    """Labels as stored and filtered: stripped, lower case, distinct, in order."""
    out = dict.fromkeys(str(label).strip().lower() for label in labels or ())
    out.pop("", None)
    return tuple(out)


def batched(items: Sequence[Any], size: int = BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def as_matrix(embeddings: Sequence[np.ndarray] | np.ndarray, rows: int) -> np.ndarray:
    """The embeddings as one finite float32 matrix of ``rows`` rows; ``InvalidInput`` if not."""
    if isinstance(embeddings, np.ndarray):
        matrix = embeddings
    elif len(embeddings) == 0:
        matrix = np.zeros((0, 0), dtype=np.float32)
    else:
        matrix = np.stack([np.asarray(v) for v in embeddings])
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.ndim == 1 and rows == 0 and matrix.size == 0:
        matrix = matrix.reshape(0, 0)
    if matrix.ndim != 2 or matrix.shape[0] != rows:
        raise InvalidInput(
            f"{rows} chunks need {rows} embeddings, got an array of shape {matrix.shape}"
        )
    if rows and not np.isfinite(matrix).all():
        raise InvalidInput("embeddings contain NaN or infinite values")
    return matrix
