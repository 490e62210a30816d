"""Exact cosine search over an in-memory float32 matrix (numpy), kept in step with writes.

The matrix is a cache of the ``chunks.embedding`` BLOBs of live pages (SQL is the source of
truth). Rows are kept dense: a removed row is filled by the last one (swap-remove), so a page
rewrite costs O(chunks of the page), never a copy of the matrix. Growth doubles the capacity.

Small indexes are searched exactly: one matrix-vector product + ``argpartition``. From
``prefilter_min_rows`` rows on, a search first ranks every row by the Hamming distance of its
sign code (``sign_codes``) to the query's, then scores exactly only the nearest pool (at least
``prefilter_pool`` rows, and ``POOL_PER_RESULT`` per result asked for). Hits and their scores are
exact cosines; what is approximate is which rows get scored. At 100k x 384 that is ~1 ms
instead of ~6.5 ms, and it keeps BLAS's threads idle; the recall it keeps is measured in
``bench/vector_recall.py`` (docs/benchmarks.md). Codes are kept for every row (48 bytes per
384-dimension row, 3% of the matrix).

Thread safety: every method takes the instance lock, so the writer thread can apply deltas while
reader threads search.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np

from confluence_rag.store.sign_codes import hamming, nearest, sign_codes, word_count

_INITIAL_CAPACITY = 1024
PREFILTER_MIN_ROWS = 20_000
PREFILTER_POOL = 2000
POOL_PER_RESULT = 20


class VectorIndex:
    """Chunk id -> unit vector (plus the chunk's page id, for filtering)."""

    def __init__(
        self,
        dimension: int,
        *,
        prefilter_min_rows: int | None = None,
        prefilter_pool: int | None = None,
    ) -> None:
        """The prefilter settings default to the module's constants, read now (so a bench can
        change them for every index a store creates)."""
        self.dimension = dimension
        self._prefilter_min_rows = (
            PREFILTER_MIN_ROWS if prefilter_min_rows is None else prefilter_min_rows
        )
        self._prefilter_pool = PREFILTER_POOL if prefilter_pool is None else prefilter_pool
        self._pool_per_result = POOL_PER_RESULT
        self._lock = threading.Lock()
        self._matrix = np.zeros((_INITIAL_CAPACITY, dimension), dtype=np.float32)
        self._ids = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self._pages = np.zeros(_INITIAL_CAPACITY, dtype=np.int64)
        self._row: dict[int, int] = {}
        self._size = 0
        self._codes = np.zeros((word_count(dimension), _INITIAL_CAPACITY), dtype=np.uint64)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._row

    def ids(self) -> np.ndarray:
        with self._lock:
            return self._ids[: self._size].copy()

    def upsert(self, ids: Sequence[int], page_ids: Sequence[int], vectors: np.ndarray) -> None:
        """Add or replace rows (vectorised: a full load of 100k rows is one copy). Vectors are
        normalised here (a zero vector stays zero); a repeated id keeps its last vector."""
        if len(ids) == 0:
            return
        raw = np.asarray(vectors, dtype=np.float32).reshape(len(ids), self.dimension)
        norms = np.linalg.norm(raw, axis=1, keepdims=True)
        block = (raw / np.where(norms > 0, norms, 1.0)).astype(np.float32, copy=False)
        id_arr = np.asarray(ids, dtype=np.int64)
        page_arr = np.asarray(page_ids, dtype=np.int64)
        if len(set(id_arr.tolist())) != len(id_arr):
            last = {int(i): n for n, i in enumerate(id_arr.tolist())}
            keep = np.fromiter(last.values(), dtype=np.int64, count=len(last))
            id_arr, page_arr, block = id_arr[keep], page_arr[keep], block[keep]
        with self._lock:
            rows = np.fromiter(
                (self._row.get(i, -1) for i in id_arr.tolist()), dtype=np.int64, count=len(id_arr)
            )
            known = rows >= 0
            if known.any():
                self._matrix[rows[known]] = block[known]
                self._pages[rows[known]] = page_arr[known]
                self._code_rows(rows[known], block[known])
            fresh = ~known
            count = int(fresh.sum())
            if count:
                start = self._size
                self._reserve(start + count)
                end = start + count
                self._matrix[start:end] = block[fresh]
                self._ids[start:end] = id_arr[fresh]
                self._pages[start:end] = page_arr[fresh]
                self._code_rows(np.arange(start, end), block[fresh])
                self._row.update(zip(id_arr[fresh].tolist(), range(start, end), strict=True))
                self._size = end

    def _code_rows(self, positions: np.ndarray, vectors: np.ndarray) -> None:
        """Keep the codes in step with rows just written. Caller holds the lock."""
        self._codes[:, positions] = sign_codes(vectors)

    def remove(self, ids: Iterable[int]) -> int:
        """Remove rows by chunk id (unknown ids are ignored); returns how many were removed."""
        removed = 0
        with self._lock:
            for chunk_id in ids:
                row = self._row.pop(int(chunk_id), None)
                if row is None:
                    continue
                last = self._size - 1
                if row != last:
                    moved = int(self._ids[last])
                    self._matrix[row] = self._matrix[last]
                    self._ids[row] = moved
                    self._pages[row] = self._pages[last]
                    self._codes[:, row] = self._codes[:, last]
                    self._row[moved] = row
                self._size = last
                removed += 1
        return removed

    def remove_pages(self, page_ids: Iterable[int]) -> int:
        """Remove every row of these pages."""
        wanted = np.fromiter((int(p) for p in page_ids), dtype=np.int64)
        if wanted.size == 0:
            return 0
        with self._lock:
            hit = np.isin(self._pages[: self._size], wanted)
            doomed = self._ids[: self._size][hit].tolist()
        return self.remove(doomed)

    def search(
        self, query: np.ndarray, limit: int, allowed_pages: np.ndarray | None = None
    ) -> list[tuple[int, float]]:
        """Top ``limit`` chunk ids by cosine with ``query``; ``allowed_pages`` (page ids)
        restricts the rows considered before the cut, so a filter never starves the result."""
        q = np.asarray(query, dtype=np.float32).reshape(self.dimension)
        norm = float(np.linalg.norm(q))
        if norm > 0:
            q = q / norm
        with self._lock:
            n = self._size
            if n == 0 or limit <= 0:
                return []
            rows = None if allowed_pages is None else self._rows_of_pages(allowed_pages)
            if rows is not None and rows.size == 0:
                return []
            positions, scores = self._score(q, n, rows, limit)
            k = min(limit, scores.shape[0])
            top = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(k)
            top = top[np.argsort(-scores[top], kind="stable")]
            chosen = top if positions is None else positions[top]
            return [(int(i), float(s)) for i, s in zip(self._ids[chosen], scores[top], strict=True)]

    def _score(
        self, q: np.ndarray, n: int, rows: np.ndarray | None, limit: int
    ) -> tuple[np.ndarray | None, np.ndarray]:
        """``(row positions scored, their cosines)``; positions ``None`` means all ``n`` rows.
        ``rows``, if given, are the only positions allowed."""
        allowed = n if rows is None else rows.size
        if allowed >= self._prefilter_min_rows:
            distance = hamming(self._codes, sign_codes(q[None, :])[:, 0], n)
            if rows is not None:
                distance = distance[rows]
            pool = nearest(distance, max(self._prefilter_pool, limit * self._pool_per_result))
            positions = pool if rows is None else rows[pool]
            return positions, _cosines(self._matrix[positions], q)
        if rows is None:
            return None, _cosines(self._matrix[:n], q)
        # Fewer allowed rows than the prefilter's threshold: gathering them is cheaper than
        # scoring every row.
        return rows, _cosines(self._matrix[rows], q)

    def _rows_of_pages(self, allowed_pages: np.ndarray) -> np.ndarray:
        """Row positions whose page is allowed: a boolean table indexed by page id (ids are
        SQLite rowids, so dense) costs one gather, unlike ``np.isin``'s sort."""
        pages = self._pages[: self._size]
        allowed = np.asarray(allowed_pages, dtype=np.int64)
        allowed = allowed[allowed >= 0]
        if allowed.size == 0 or pages.size == 0:
            return np.zeros(0, dtype=np.int64)
        top = int(max(int(pages.max()), int(allowed.max()))) + 1
        if top > 8 * (pages.size + allowed.size) + 1024:  # sparse ids: fall back to a sort
            return np.flatnonzero(np.isin(pages, allowed))
        table = np.zeros(top, dtype=bool)
        table[allowed] = True
        return np.flatnonzero(table[pages])

    def reserve(self, rows: int) -> None:
        """Make room for ``rows`` rows at once (a full load knows its size: growing by
        doubling would copy the matrix several times)."""
        with self._lock:
            self._reserve(rows, exact=True)

    def _reserve(self, needed: int, exact: bool = False) -> None:
        capacity = self._ids.shape[0]
        if needed <= capacity:
            return
        if exact:
            capacity = needed
        while capacity < needed:
            capacity *= 2
        matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        matrix[: self._size] = self._matrix[: self._size]
        ids = np.zeros(capacity, dtype=np.int64)
        ids[: self._size] = self._ids[: self._size]
        pages = np.zeros(capacity, dtype=np.int64)
        pages[: self._size] = self._pages[: self._size]
        self._matrix, self._ids, self._pages = matrix, ids, pages
        codes = np.zeros((self._codes.shape[0], capacity), dtype=np.uint64)
        codes[:, : self._size] = self._codes[:, : self._size]
        self._codes = codes


def _cosines(rows: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Dot products of unit rows with the unit query, on this thread.

    Not ``rows @ q``: that goes to BLAS, whose threads keep spinning for milliseconds after a
    product. On a 2-core machine they slowed the next search's keyword search and query
    embedding, which run side by side, by half (18 ms instead of 9, 21 instead of 13, measured
    inside the search). einsum's own loop costs at most ~0.6 ms more below the prefilter's row
    count, where it scores every row.
    """
    return np.einsum("ij,j->i", rows, q)
