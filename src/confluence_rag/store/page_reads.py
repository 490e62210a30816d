"""Reads of stored pages, once for both backends: versions, one page, listings, counts, a page
by title, stored vectors by content hash, and the page filter every search applies.

Plans, like ``bookkeeping`` (see ``dialect``): each backend runs them on its own connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from confluence_rag.errors import InvalidInput, PageNotFound
from confluence_rag.records import PageRecord, SearchFilters, split_page_key
from confluence_rag.store.bookkeeping import require_source
from confluence_rag.store.dialect import Dialect, Plan, Query
from confluence_rag.store.rows import PAGE_COUNTS, PAGE_LIST_COLUMNS, page_from_row
from confluence_rag.store.values import batched, normalise_labels


def has_page_filters(filters: SearchFilters) -> bool:
    return bool(
        filters.source_id
        or filters.spaces
        or filters.labels
        or filters.page_types
        or filters.updated_after
    )


def page_filter_sql(d: Dialect, filters: SearchFilters, alias: str = "p") -> tuple[str, list[Any]]:
    """A WHERE fragment over ``pages AS alias`` (``?`` placeholders): live pages matching every
    filter given.

    Several spaces / types / labels are alternatives (any of them); different filters combine
    (all of them). Labels compare in lower case, as stored.
    """
    clauses = [d.live(alias)]
    params: list[Any] = []
    if filters.source_id:
        clauses.append(f"{alias}.source_id = ?")
        params.append(filters.source_id)
    for column, values in (
        (f"{alias}.space_key", filters.spaces),
        (f"{alias}.type", filters.page_types),
    ):
        if values:
            match, values_params = d.in_list(column, values)
            clauses.append(match)
            params.extend(values_params)
    if filters.updated_after is not None:
        clauses.append(f"{alias}.updated_at > ?")
        params.append(d.to_time(filters.updated_after))
    labels = normalise_labels(filters.labels)
    if labels:
        match, label_params = d.in_list("l.label", labels)
        clauses.append(
            f"EXISTS (SELECT 1 FROM page_labels l WHERE l.page_id = {alias}.id AND {match})"
        )
        params.extend(label_params)
    return " AND ".join(clauses), params


def page_versions(d: Dialect, source_id: str) -> Plan[dict[str, tuple[int, bool]]]:
    yield from require_source(d, source_id)
    rows = yield Query(
        "SELECT confluence_page_id, confluence_version, is_deleted FROM pages WHERE source_id = ?",
        (source_id,),
        returns="all",
    )
    return {
        row["confluence_page_id"]: (int(row["confluence_version"]), bool(row["is_deleted"]))
        for row in rows
    }


def get_page(d: Dialect, key: str) -> Plan[PageRecord]:
    source_id, confluence_page_id = split_page_key(key)
    row = yield Query(
        f"SELECT p.*, {PAGE_COUNTS} FROM pages p "
        "WHERE p.source_id = ? AND p.confluence_page_id = ?",
        (source_id, confluence_page_id),
        returns="one",
    )
    if row is None:
        raise PageNotFound(f"no page {key!r}", details={"page_key": key})
    return page_from_row(row, d)


def find_page_by_title(
    d: Dialect, source_id: str | None, space_key: str, title: str
) -> Plan[PageRecord]:
    """The live page of ``space_key`` titled ``title`` (case-insensitively; Confluence titles
    are unique per space). Without a source, the first source (by creation) that has one.

    ``lower(title)`` matches the index ``ix_pages_space_title`` (revision 0004). SQLite's
    ``lower`` folds ASCII letters only, PostgreSQL's every letter.
    """
    where = f"p.space_key = ? AND lower(p.title) = lower(?) AND {d.live('p')}"
    params = [space_key, title]
    if source_id is not None:
        yield from require_source(d, source_id)
        where += " AND p.source_id = ?"
        params.append(source_id)
    row = yield Query(
        f"SELECT p.*, {PAGE_COUNTS} FROM pages p JOIN sources s ON s.id = p.source_id "
        f"WHERE {where} ORDER BY s.created_at, s.id, p.id LIMIT 1",
        params,
        returns="one",
    )
    if row is None:
        raise PageNotFound(
            f"no page titled {title!r} in space {space_key}",
            details={"space_key": space_key, "title": title, "source_id": source_id},
        )
    return page_from_row(row, d)


def list_pages(
    d: Dialect,
    source_id: str,
    space: str | None,
    limit: int,
    offset: int,
    include_deleted: bool,
) -> Plan[list[PageRecord]]:
    if limit < 0 or offset < 0:
        raise InvalidInput("limit and offset must be 0 or more")
    yield from require_source(d, source_id)
    where, params = "p.source_id = ?", [source_id]
    if space is not None:
        where += " AND p.space_key = ?"
        params.append(space)
    if not include_deleted:
        where += f" AND {d.live('p')}"
    rows = yield Query(
        f"SELECT {PAGE_LIST_COLUMNS}, {PAGE_COUNTS} FROM pages p WHERE {where} "
        "ORDER BY lower(p.title), p.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
        returns="all",
    )
    return [page_from_row(row, d) for row in rows]


def count_pages(d: Dialect, source_id: str, space: str | None) -> Plan[int]:
    yield from require_source(d, source_id)
    query = f"SELECT count(*) AS n FROM pages p WHERE p.source_id = ? AND {d.live('p')}"
    params = [source_id]
    if space is not None:
        query += " AND p.space_key = ?"
        params.append(space)
    row = yield Query(query, params, returns="one")
    return int(row["n"])


def embeddings_for_hashes(
    d: Dialect, source_id: str | None, hashes: Sequence[str]
) -> Plan[dict[str, np.ndarray]]:
    """One stored vector per content hash (within ``source_id`` if given)."""
    found: dict[str, np.ndarray] = {}
    for batch in batched(list(dict.fromkeys(hashes))):
        match, params = d.in_list("c.content_hash", batch)
        select = f"SELECT {d.first_per('c.content_hash')}c.content_hash, c.embedding FROM chunks c"
        if source_id is None:
            query = f"{select} WHERE {match}"
        else:
            query = f"{select} JOIN pages p ON p.id = c.page_id WHERE p.source_id = ? AND {match}"
            params = [source_id, *params]
        for row in (yield Query(query, params, returns="all")):
            if row["content_hash"] not in found:
                found[row["content_hash"]] = d.from_vector(row["embedding"])
    return found
