"""Records -> (structured model, readable text) for the MCP tools. Pure: no I/O.

The models are validated from the records (``model_validate(record, from_attributes=True)``,
see ``models.py``); only what a tool derives (a page slice, ``done``) is given here.

Every tool answers twice: structured content for clients that read ``structuredContent``, and
Markdown text for the model, which reads ``content``. The text carries everything an assistant
needs to act (titles, URLs, page ids, how to get more), so it never has to parse JSON.
"""

from __future__ import annotations

from confluence_rag.mcp.models import (
    CodeExample,
    CodeSearchResult,
    FullPage,
    KnowledgeHit,
    PageList,
    PageSummary,
    Progress,
    SearchResult,
    SourceInfo,
    SourcesResult,
    SpaceInfo,
    SyncStarted,
)
from confluence_rag.presenters import overlay
from confluence_rag.records import JobRecord, PageRecord, SourceRecord
from confluence_rag.search.models import CodeHit, SearchHit

# Log lines a progress answer carries: enough to see what happened, not the whole history.
PROGRESS_LOG_LINES = 10
TERMINAL = ("completed", "failed", "cancelled")
# Pages mode: the page's best chunk plus this many more, so an answer stays readable.
MORE_CHUNKS_PER_PAGE = 2


# --- sources ---------------------------------------------------------------------------------
def source_info(source: SourceRecord) -> SourceInfo:
    spaces = [SpaceInfo(key=k, name=source.space_names.get(k, k)) for k in source.space_keys]
    return SourceInfo.model_validate(overlay(source, spaces=spaces), from_attributes=True)


def sources_text(result: SourcesResult) -> str:
    if not result.sources:
        return (
            "No Confluence sources are indexed yet. Add one with `confluence-rag add` "
            "(or the web UI / POST /api/confluence/sources)."
        )
    lines = [f"{result.count} Confluence source(s) indexed:", ""]
    for s in result.sources:
        spaces = ", ".join(f"{sp.key} ({sp.name})" for sp in s.spaces)
        lines.append(f"- **{s.title}** — source_id: `{s.source_id}`")
        lines.append(f"  Site: {s.site_url} ({s.flavour}); spaces: {spaces}")
        synced = s.last_sync_at or "never"
        lines.append(
            f"  {s.page_count} pages, {s.chunk_count} chunks; status {s.sync_status}; "
            f"last sync {synced}"
        )
        if s.sync_error:
            lines.append(f"  Last error: {s.sync_error}")
    return "\n".join(lines)


# --- search ----------------------------------------------------------------------------------
def knowledge_hit(hit: SearchHit) -> KnowledgeHit:
    more = hit.more_chunks[:MORE_CHUNKS_PER_PAGE]
    return KnowledgeHit.model_validate(overlay(hit, more_chunks=more), from_attributes=True)


def search_text(result: SearchResult) -> str:
    if not result.results:
        return (
            f'No results for "{result.query}". Try other words, drop filters, or check the '
            "sources with rag_get_available_sources."
        )
    lines = [f'{result.count} result(s) for "{result.query}" ({result.return_mode} mode):']
    for n, hit in enumerate(result.results, 1):
        lines.append("")
        lines.append(f"## {n}. {hit.title}")
        lines.append(f"URL: {hit.url}")
        lines.append(f"Path: {hit.breadcrumb}")
        if hit.heading:
            lines.append(f"Section: {hit.heading}")
        lines.append(
            f"page_id: `{hit.page_id}` · score {hit.score:.4f} ({hit.match_type})"
            + (" · weak match, probably not an answer" if hit.weak else "")
            + (f" · labels: {', '.join(hit.labels)}" if hit.labels else "")
        )
        lines.append("")
        lines.append(hit.content)
        for more in hit.more_content:
            lines.append("")
            lines.append("…")
            lines.append(more)
    lines.append("")
    lines.append("Read a whole page with rag_read_full_page(page_id=...).")
    return "\n".join(lines)


def code_example(hit: CodeHit) -> CodeExample:
    return CodeExample.model_validate(hit, from_attributes=True)


def _fence(code: str) -> str:
    """A fence longer than any backtick run inside the code, so the block cannot end early."""
    longest = run = 0
    for char in code:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return "`" * max(3, longest + 1)


def code_text(result: CodeSearchResult) -> str:
    if not result.results:
        where = f" in {result.language}" if result.language else ""
        return f'No code examples{where} for "{result.query}".'
    lines = [f'{result.count} code example(s) for "{result.query}":']
    for n, ex in enumerate(result.results, 1):
        lines.append("")
        lines.append(f"## {n}. {ex.title}" + (f" — {ex.heading}" if ex.heading else ""))
        lines.append(f"URL: {ex.url}")
        lines.append(
            f"page_id: `{ex.page_id}` · {ex.language or 'plain text'}, {ex.line_count} lines"
            f" · score {ex.score:.4f}"
        )
        fence = _fence(ex.code)
        lines.append(f"{fence}{ex.language}")
        lines.append(ex.code)
        lines.append(fence)
    return "\n".join(lines)


# --- pages -----------------------------------------------------------------------------------
def page_summary(page: PageRecord) -> PageSummary:
    return PageSummary.model_validate(page, from_attributes=True)


def page_list_text(result: PageList) -> str:
    where = f" in space {result.space}" if result.space else ""
    if not result.pages:
        if result.total and result.offset >= result.total:
            return (
                f"No pages at offset {result.offset}: source {result.source_id}{where} has "
                f"{result.total} page(s)."
            )
        return f"Source {result.source_id}{where} has no indexed pages yet."
    first, last = result.offset + 1, result.offset + result.count
    lines = [f"Pages {first}-{last} of {result.total} in {result.source_id}{where} (by title):"]
    for page in result.pages:
        lines.append(f"- {page.title} — {page.url}")
        lines.append(
            f"  page_id: `{page.page_id}` · {page.type} v{page.version} · "
            f"updated {page.updated_at or 'unknown'}"
        )
    if result.next_offset is not None:
        lines.append("")
        lines.append(f"More pages: call again with offset={result.next_offset}.")
    return "\n".join(lines)


def full_page(page: PageRecord, offset: int, max_chars: int) -> FullPage:
    """The page's Markdown from ``offset``, at most ``max_chars`` of it."""
    markdown = page.markdown or ""
    total = len(markdown)
    content = markdown[offset : offset + max_chars]
    end = offset + len(content)
    truncated = end < total
    window = overlay(
        page,
        content=content,
        offset=offset,
        returned_chars=len(content),
        total_chars=total,
        truncated=truncated,
        next_offset=end if truncated else None,
    )
    return FullPage.model_validate(window, from_attributes=True)


def full_page_text(page: FullPage) -> str:
    lines = [f"# {page.title}", "", f"URL: {page.url}", f"Path: {page.breadcrumb}"]
    meta = f"page_id: `{page.page_id}` · {page.type} v{page.version}"
    if page.updated_at:
        meta += f" · updated {page.updated_at}"
    if page.author:
        meta += f" · by {page.author}"
    lines.append(meta)
    if page.labels:
        lines.append(f"Labels: {', '.join(page.labels)}")
    if page.is_deleted:
        lines.append("Note: this page was deleted in Confluence; this is the last indexed copy.")
    if page.offset:
        lines.append(f"(Continuing from character {page.offset} of {page.total_chars}.)")
    lines.append("")
    lines.append(page.content if page.content else "(no content at this offset)")
    if page.truncated:
        lines.append("")
        lines.append(
            f"[TRUNCATED: showed characters {page.offset}-{page.offset + page.returned_chars} "
            f"of {page.total_chars}. Read the rest with rag_read_full_page("
            f'page_id="{page.page_id}", offset={page.next_offset}).]'
        )
    return "\n".join(lines)


# --- jobs ------------------------------------------------------------------------------------
def sync_started(job: JobRecord, already_running: bool) -> SyncStarted:
    return SyncStarted.model_validate(
        overlay(job, already_running=already_running), from_attributes=True
    )


def sync_text(result: SyncStarted) -> str:
    if result.already_running:
        head = (
            f"A {result.kind} of {result.source_id} is already {result.status}; "
            "no new sync was started."
        )
    else:
        head = f"Sync of {result.source_id} started ({result.status})."
    return (
        f"{head}\nprogress_id: `{result.progress_id}`\n"
        f'Follow it with rag_get_progress(progress_id="{result.progress_id}").'
    )


def progress(job: JobRecord) -> Progress:
    recent = list(job.log)[-PROGRESS_LOG_LINES:]
    done = job.status in TERMINAL
    return Progress.model_validate(overlay(job, done=done, log=recent), from_attributes=True)


def progress_text(result: Progress) -> str:
    lines = [
        f"{result.kind.capitalize()} of {result.source_id}: {result.status} "
        f"({result.stage}, {result.percent:.0f}%)",
        f"progress_id: `{result.progress_id}`",
    ]
    counted = {name: value for name, value in result.counters.items() if value}
    if counted:
        lines.append("Counters: " + ", ".join(f"{k} {v}" for k, v in counted.items()))
    if result.error:
        lines.append(f"Error: {result.error}")
    if result.log:
        lines.append("Recent log:")
        lines.extend(f"  {line}" for line in result.log)
    if not result.done:
        lines.append("Still running: call rag_get_progress again in a few seconds.")
    return "\n".join(lines)
