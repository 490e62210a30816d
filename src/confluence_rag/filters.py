"""Which sources, spaces and labels a request may name: one check for every surface.

A filter naming a source or space that is not indexed would search nothing and answer "no
results", which reads as "the knowledge base does not know". So the API, the web page, the MCP
tools and the CLI all pass their filters through ``FilterService.check``: blanks are dropped,
values normalised and checked for shape (``search.validation``), then the source and spaces are
looked up among the indexed sources. A typo is an ``InvalidInput`` that lists what exists.
(With nothing indexed at all, only the shape is checked: the empty answer is then true.)

    filters = await services.filters.check(SearchFilters(source_id=..., spaces=("dev",)))
    source = await services.filters.source("example.atlassian.net:DEV")
"""

from __future__ import annotations

from typing import Protocol

from confluence_rag.errors import InvalidInput, SourceNotFound
from confluence_rag.records import SearchFilters, SourceRecord
from confluence_rag.search.validation import checked_filters, normalised_filters


class SourceLister(Protocol):
    async def list(self, *, counts: bool = True) -> list[SourceRecord]: ...


class FilterService:
    """Checks names in requests against the indexed sources."""

    def __init__(self, sources: SourceLister) -> None:
        self._sources = sources

    async def source(self, source_id: str) -> SourceRecord:
        """The source with exactly this id (page/chunk counts not filled); ``SourceNotFound``
        listing the known ids."""
        sources = await self._sources.list(counts=False)
        wanted = source_id.strip()
        for source in sources:
            if source.id == wanted:
                return source
        raise SourceNotFound(
            f"unknown source_id {source_id!r}; known sources: {_known(sources)}",
            details={"source_id": source_id},
        )

    async def check(self, filters: SearchFilters) -> SearchFilters:
        """``filters`` normalised, well formed, and naming only indexed sources and spaces."""
        filters = checked_filters(normalised_filters(filters))
        sources = await self._sources.list(counts=False)
        if not sources:
            # Nothing is indexed: every search answers empty, which is then the truth, not a
            # typo hiding results; an empty answer is what a fresh install should give.
            return filters
        scope = sources
        if filters.source_id is not None:
            scope = [s for s in sources if s.id == filters.source_id]
            if not scope:
                raise InvalidInput(
                    f"unknown source_id {filters.source_id!r}; known sources: {_known(sources)}",
                    details={"field": "source_id"},
                )
        known = sorted({key for source in scope for key in source.space_keys})
        for space in filters.spaces:
            if space not in known:
                where = f"source {filters.source_id}" if filters.source_id else "any indexed source"
                raise InvalidInput(
                    f"space {space!r} is not in {where}; spaces: {', '.join(known) or '-'}",
                    details={"field": "space"},
                )
        return filters


def _known(sources: list[SourceRecord]) -> str:
    return ", ".join(s.id for s in sources) or "none (nothing is indexed yet)"
