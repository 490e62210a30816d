"""The MCP tools: thin adapters from typed arguments to the services, and back to results.

Named like Archon's RAG tools so agent prompts written for Archon work unchanged. Each tool:

- declares typed, bounded parameters (the SDK publishes them as the input schema and rejects
  out-of-range values as a tool error before the tool runs);
- returns ``CallToolResult`` with Markdown text AND structured content validated against the
  tool's output model (``Annotated[CallToolResult, Model]`` publishes that model's schema);
- turns every ``ConfluenceRagError`` into a ``ToolError``: the client gets ``isError: true`` with
  the message, the server keeps running.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from confluence_rag.errors import ConfluenceRagError, InvalidInput, JobAlreadyRunning
from confluence_rag.mcp import formatting as fmt
from confluence_rag.mcp.models import (
    CodeSearchResult,
    FullPage,
    PageList,
    Progress,
    SearchResult,
    SourcesResult,
    SyncStarted,
)
from confluence_rag.records import SearchFilters
from confluence_rag.services import Services

ServicesProvider = Callable[[], Services]

MAX_MATCH_COUNT = 50
MAX_PAGE_LIST = 200
READ_PAGE_MAX_CHARS = 20_000  # default per call: a long page comes in several calls
MIN_READ_CHARS = 200
MAX_READ_CHARS = 50_000
MAX_LABELS = 20

READ_ONLY = ToolAnnotations(read_only_hint=True, idempotent_hint=True, open_world_hint=False)

SourceIdArg = Annotated[
    str | None,
    Field(description="Restrict to one source (a source_id from rag_get_available_sources)."),
]
MatchCount = Annotated[
    int, Field(ge=1, le=MAX_MATCH_COUNT, description=f"How many results (1-{MAX_MATCH_COUNT}).")
]


@contextmanager
def tool_errors() -> Iterator[None]:
    """Our errors become tool errors (``isError``) with their message; nothing crashes."""
    try:
        yield
    except ConfluenceRagError as error:
        raise ToolError(error.message) from error


def answer(model: BaseModel, text: str) -> CallToolResult:
    """Readable text for the model plus the same data as structured content."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json"),
    )


async def _filters(
    services: Services,
    source_id: str | None,
    space: str | None,
    labels: list[str] | None = None,
    language: str | None = None,
) -> SearchFilters:
    """Filters for a search, checked by the services like every surface's: a typo is an
    error naming what exists, not zero results."""
    wanted = [label for label in labels or [] if label.strip()]
    # A tool-call bound, tighter than the search's own: an assistant listing more labels
    # than this is guessing, and every label narrows the answer further.
    if len(wanted) > MAX_LABELS:
        raise InvalidInput(
            f"at most {MAX_LABELS} labels, got {len(wanted)}", details={"field": "labels"}
        )
    return await services.filters.check(
        SearchFilters(
            source_id=source_id,
            spaces=(space,) if space else (),
            labels=tuple(wanted),
            language=language,
        )
    )


def register_tools(server: MCPServer, get_services: ServicesProvider) -> None:
    """Add the seven RAG tools to ``server``; each call asks ``get_services()`` for the
    services, so the HTTP mount can be built before the app's lifespan opens them."""

    @server.tool(
        name="rag_get_available_sources",
        title="List indexed Confluence sources",
        annotations=READ_ONLY,
        description=(
            "List the Confluence sources in the knowledge base: each source's source_id (use it "
            "to filter the other tools), title, site, spaces, page and chunk counts, and last "
            "sync time and status. Call this first to learn what can be searched."
        ),
    )
    async def rag_get_available_sources() -> Annotated[CallToolResult, SourcesResult]:
        with tool_errors():
            sources = await get_services().sources.list()
        result = SourcesResult(count=len(sources), sources=[fmt.source_info(s) for s in sources])
        return answer(result, fmt.sources_text(result))

    @server.tool(
        name="rag_search_knowledge_base",
        title="Search Confluence pages",
        annotations=READ_ONLY,
        description=(
            "Hybrid (keyword + semantic) search over the indexed Confluence pages. Returns the "
            "best matching pages, one hit per page with its best passages, with title, URL, "
            "breadcrumb, section heading, score and page_id; a page whose title is the query "
            "comes first, and weak: true marks hits that are probably not answers. "
            "return_mode='chunks' gives one passage per hit instead. The query takes "
            'operators: "exact phrase", -word, title:word, space:KEY, label:name, '
            "type:page|blogpost, author:name, after:YYYY-MM-DD, before:YYYY-MM-DD. Filter by "
            "source_id, "
            "space key or labels (a page must carry all given labels). Use rag_read_full_page "
            "for a whole page."
        ),
    )
    async def rag_search_knowledge_base(
        query: Annotated[str, Field(description="What to look for, in natural language.")],
        source_id: SourceIdArg = None,
        space: Annotated[
            str | None, Field(description="Restrict to one Confluence space key, e.g. DEV.")
        ] = None,
        labels: Annotated[
            list[str] | None,
            Field(description="Only pages carrying all these Confluence labels."),
        ] = None,
        match_count: MatchCount = 5,
        return_mode: Annotated[
            Literal["chunks", "pages"],
            Field(description="'chunks': one passage per hit; 'pages': one hit per page."),
        ] = "pages",
    ) -> Annotated[CallToolResult, SearchResult]:
        services = get_services()
        with tool_errors():
            filters = await _filters(services, source_id, space, labels)
            hits = await services.search.search(
                query, filters=filters, limit=match_count, mode=return_mode
            )
        result = SearchResult(
            query=query.strip(),
            return_mode=return_mode,
            count=len(hits),
            results=[fmt.knowledge_hit(hit) for hit in hits],
        )
        return answer(result, fmt.search_text(result))

    @server.tool(
        name="rag_search_code_examples",
        title="Search code examples",
        annotations=READ_ONLY,
        description=(
            "Search the code blocks found in Confluence pages (code and noformat macros). "
            "Returns each example's code, language, line count, and the page title, section "
            "heading, URL and page_id it came from. Filter by source_id and language "
            "(e.g. python, bash, sql, yaml)."
        ),
    )
    async def rag_search_code_examples(
        query: Annotated[str, Field(description="What the code should do or contain.")],
        source_id: SourceIdArg = None,
        language: Annotated[
            str | None, Field(description="Only code in this language, e.g. python.")
        ] = None,
        match_count: MatchCount = 5,
    ) -> Annotated[CallToolResult, CodeSearchResult]:
        services = get_services()
        with tool_errors():
            filters = await _filters(services, source_id, None, language=language)
            hits = await services.search.search_code(query, filters=filters, limit=match_count)
        result = CodeSearchResult(
            query=query.strip(),
            language=filters.language,
            count=len(hits),
            results=[fmt.code_example(hit) for hit in hits],
        )
        return answer(result, fmt.code_text(result))

    @server.tool(
        name="rag_list_pages_for_source",
        title="List pages of a source",
        annotations=READ_ONLY,
        description=(
            "List the indexed pages of one source, sorted by title, in batches: title, URL, "
            "page_id, type, version and last update. Use limit/offset to page through; the "
            "answer gives the total and the next offset."
        ),
    )
    async def rag_list_pages_for_source(
        source_id: Annotated[
            str, Field(description="The source (a source_id from rag_get_available_sources).")
        ],
        space: Annotated[
            str | None, Field(description="Only pages of this space key, e.g. DEV.")
        ] = None,
        limit: Annotated[
            int,
            Field(ge=1, le=MAX_PAGE_LIST, description=f"Pages per batch (1-{MAX_PAGE_LIST})."),
        ] = 50,
        offset: Annotated[int, Field(ge=0, description="Pages to skip (for paging).")] = 0,
    ) -> Annotated[CallToolResult, PageList]:
        services = get_services()
        with tool_errors():
            source = await services.filters.source(source_id)
            filters = await _filters(services, source.id, space)
            key = filters.spaces[0] if filters.spaces else None
            total = await services.pages.count(source.id, space=key)
            pages = await services.pages.list(source.id, space=key, limit=limit, offset=offset)
        end = offset + len(pages)
        result = PageList(
            source_id=source.id,
            space=key,
            total=total,
            offset=offset,
            limit=limit,
            count=len(pages),
            next_offset=end if end < total and pages else None,
            pages=[fmt.page_summary(page) for page in pages],
        )
        return answer(result, fmt.page_list_text(result))

    @server.tool(
        name="rag_read_full_page",
        title="Read a whole page",
        annotations=READ_ONLY,
        description=(
            "Read one indexed Confluence page in full as Markdown, with its title, URL, "
            "breadcrumb, labels and version. Name it by page_id (as search results give it, "
            "'<source_id>:<confluence id>', or the bare numeric Confluence id) or by its "
            f"Confluence URL. At most max_chars characters (default {READ_PAGE_MAX_CHARS}) come "
            "back per call; a longer page ends with a [TRUNCATED ...] marker and next_offset: "
            "call again with offset=next_offset to read the rest."
        ),
    )
    async def rag_read_full_page(
        page_id: Annotated[
            str | None,
            Field(description="A search result's page_id, or a numeric Confluence page id."),
        ] = None,
        url: Annotated[
            str | None, Field(description="The page's Confluence URL (instead of page_id).")
        ] = None,
        offset: Annotated[
            int,
            Field(
                ge=0,
                description="Character offset to start from (next_offset of a truncated answer).",
            ),
        ] = 0,
        max_chars: Annotated[
            int,
            Field(
                ge=MIN_READ_CHARS,
                le=MAX_READ_CHARS,
                description=f"Characters to return at most ({MIN_READ_CHARS}-{MAX_READ_CHARS}).",
            ),
        ] = READ_PAGE_MAX_CHARS,
    ) -> Annotated[CallToolResult, FullPage]:
        services = get_services()
        with tool_errors():
            page = await services.pages.find(page_id, url)
            total = len(page.markdown or "")
            if offset and offset >= total:
                raise InvalidInput(
                    f"offset {offset} is past the end of the page ({total} characters)"
                )
        result = fmt.full_page(page, offset, max_chars)
        return answer(result, fmt.full_page_text(result))

    @server.tool(
        name="rag_sync_source",
        title="Sync a source now",
        annotations=ToolAnnotations(
            read_only_hint=False,
            destructive_hint=False,
            idempotent_hint=True,
            open_world_hint=True,
        ),
        description=(
            "Start a sync of one source now: fetch pages changed in Confluence since the last "
            "crawl, add new ones and drop deleted ones. Returns a progress_id at once; follow "
            "it with rag_get_progress. If a crawl or sync of the source is already running, "
            "returns that job's progress_id instead (already_running: true)."
        ),
    )
    async def rag_sync_source(
        source_id: Annotated[
            str, Field(description="The source to sync (from rag_get_available_sources).")
        ],
    ) -> Annotated[CallToolResult, SyncStarted]:
        services = get_services()
        with tool_errors():
            source = await services.filters.source(source_id)
            try:
                job = await services.jobs.submit(source.id, "sync")
                already = False
            except JobAlreadyRunning as running:
                job = await services.jobs.get(running.job_id)
                already = True
        result = fmt.sync_started(job, already)
        return answer(result, fmt.sync_text(result))

    @server.tool(
        name="rag_get_progress",
        title="Progress of a crawl or sync",
        annotations=READ_ONLY,
        description=(
            "Progress of a crawl or sync job by its progress_id (from rag_sync_source): status "
            "(queued, running, completed, failed, cancelled), stage, percent, page counters, "
            "error and recent log lines. done is true once it has finished."
        ),
    )
    async def rag_get_progress(
        progress_id: Annotated[str, Field(description="The progress_id of a crawl or sync.")],
    ) -> Annotated[CallToolResult, Progress]:
        with tool_errors():
            job = await get_services().jobs.get(progress_id.strip())
        result = fmt.progress(job)
        return answer(result, fmt.progress_text(result))


TOOL_NAMES: tuple[str, ...] = (
    "rag_get_available_sources",
    "rag_search_knowledge_base",
    "rag_search_code_examples",
    "rag_list_pages_for_source",
    "rag_read_full_page",
    "rag_sync_source",
    "rag_get_progress",
)
