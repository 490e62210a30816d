"""Page metadata, the skip policy, and the Page -> Document step.

Search results show where a hit lives ("Space > Parent > Page") and link back to Confluence;
both come from the page record, not its body. Which pages are worth indexing is decided here
too, on the *converted* text: a page whose XHTML is 5 KB of macros may hold no words at all.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from confluence_rag import __version__
from confluence_rag.confluence.models import Page
from confluence_rag.content.code_blocks import extract_code_blocks
from confluence_rag.content.context import ConversionContext
from confluence_rag.content.models import Document
from confluence_rag.content.storage import storage_to_markdown
from confluence_rag.settings import Settings

BREADCRUMB_SEPARATOR = " > "

_IMAGE_OR_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"[\s#>*_|`~\-\[\]!]+")


def breadcrumb(page: Page, space_name: str) -> str:
    """ "Space name > Ancestor > ... > Page title" (the space key if the name is unknown)."""
    parts = [space_name or page.space_key]
    parts.extend(ancestor.title for ancestor in page.ancestors)
    parts.append(page.title)
    return BREADCRUMB_SEPARATOR.join(p for p in parts if p)


def page_metadata(page: Page, space_name: str) -> dict[str, Any]:
    """JSON-ready metadata of one page: what search results and the API show beside text."""
    return {
        "id": page.id,
        "space": page.space_key,
        "space_name": space_name or page.space_key,
        "type": page.type,
        "status": page.status,
        "title": page.title,
        "version": page.version,
        "author": page.author,
        "created_at": page.created_at.isoformat() if page.created_at else None,
        "updated_at": page.updated_at.isoformat() if page.updated_at else None,
        "labels": list(page.labels),
        "ancestors": [{"id": a.id, "title": a.title} for a in page.ancestors],
        "breadcrumb": breadcrumb(page, space_name),
        "url": page.web_url,
    }


def visible_length(markdown: str) -> int:
    """Characters of actual text: link and image targets and Markdown syntax not counted."""
    text = _IMAGE_OR_LINK.sub(r"\1", markdown)
    return len(_MARKUP.sub("", text))


def should_skip(page: Page, markdown: str, settings: Settings) -> str | None:
    """Why ``page`` should stay out of the index, or None to keep it.

    Trashed pages are always skipped (they are deleted content). Archived pages, drafts and
    near-empty pages follow ``skip_archived``, ``skip_drafts`` and ``min_page_chars``; the
    length is measured on the converted Markdown's text.
    """
    status = (page.status or "").lower()
    if status in ("trashed", "deleted"):
        return "trashed"
    if status == "archived" and settings.skip_archived:
        return "archived"
    if status == "draft" and settings.skip_drafts:
        return "draft"
    length = visible_length(markdown)
    if length < settings.min_page_chars:
        return f"near-empty: {length} characters of text (minimum {settings.min_page_chars})"
    return None


def skip_rules_key(settings: Settings) -> str:
    """What a skip was decided by: the rule settings ``should_skip`` reads, and the release of
    this code (a later converter may find text where this one found none). A page skipped under
    another key is looked at again; under the same key, only a new version of it is."""
    return (
        f"{__version__};archived={settings.skip_archived};drafts={settings.skip_drafts};"
        f"min_chars={settings.min_page_chars}"
    )


def to_document(page: Page, space_name: str, ctx: ConversionContext) -> Document:
    """Convert a page's body and attach everything search needs (breadcrumb, code blocks)."""
    page_ctx = replace(ctx, page_id=page.id, space_key=page.space_key or ctx.space_key)
    markdown = storage_to_markdown(page.body_storage or "", page_ctx)
    return Document(
        page_id=page.id,
        space_key=page.space_key,
        type=page.type,
        title=page.title,
        version=page.version,
        status=page.status,
        created_at=page.created_at,
        updated_at=page.updated_at,
        author=page.author,
        labels=tuple(page.labels),
        ancestors=tuple((a.id, a.title) for a in page.ancestors),
        web_url=page.web_url,
        markdown=markdown,
        breadcrumb=breadcrumb(page, space_name),
        code_blocks=tuple(extract_code_blocks(markdown)),
    )
