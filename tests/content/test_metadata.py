"""Page metadata, the skip policy and Page -> Document."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from confluence_rag.confluence.models import Ancestor, Page
from confluence_rag.content.metadata import (
    breadcrumb,
    page_metadata,
    should_skip,
    to_document,
    visible_length,
)
from confluence_rag.content.models import CodeBlock
from confluence_rag.content.storage import ConversionContext
from confluence_rag.settings import Settings

CREATED = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
UPDATED = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
BODY = (
    "<h1>Deploy</h1><p>Roll out with care; see "
    '<ac:link><ri:attachment ri:filename="plan.pdf"/></ac:link>.</p>'
    '<ac:structured-macro ac:name="code"><ac:parameter ac:name="language">sh</ac:parameter>'
    '<ac:parameter ac:name="title">Rollout</ac:parameter>'
    "<ac:plain-text-body><![CDATA[kubectl apply -f app.yaml]]></ac:plain-text-body>"
    "</ac:structured-macro>"
)


def make_page(**changes: object) -> Page:
    fields: dict[str, object] = {
        "id": "123",
        "space_key": "OPS",
        "type": "page",
        "status": "current",
        "title": "Deploying",
        "version": 7,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "author": "Ada Lovelace",
        "labels": ("runbook", "k8s"),
        "ancestors": (Ancestor("1", "Home"), Ancestor("5", "Runbooks")),
        "web_url": "https://x.atlassian.net/wiki/spaces/OPS/pages/123/Deploying",
        "body_storage": BODY,
    }
    fields.update(changes)
    return Page(**fields)  # type: ignore[arg-type]


def test_breadcrumb_runs_from_space_to_page() -> None:
    assert breadcrumb(make_page(), "Operations") == "Operations > Home > Runbooks > Deploying"
    assert breadcrumb(make_page(ancestors=()), "") == "OPS > Deploying"


def test_page_metadata() -> None:
    assert page_metadata(make_page(), "Operations") == {
        "id": "123",
        "space": "OPS",
        "space_name": "Operations",
        "type": "page",
        "status": "current",
        "title": "Deploying",
        "version": 7,
        "author": "Ada Lovelace",
        "created_at": "2024-01-02T03:04:05+00:00",
        "updated_at": "2024-05-06T07:08:09+00:00",
        "labels": ["runbook", "k8s"],
        "ancestors": [{"id": "1", "title": "Home"}, {"id": "5", "title": "Runbooks"}],
        "breadcrumb": "Operations > Home > Runbooks > Deploying",
        "url": "https://x.atlassian.net/wiki/spaces/OPS/pages/123/Deploying",
    }


def test_page_metadata_without_dates() -> None:
    meta = page_metadata(make_page(created_at=None, updated_at=None), "Operations")
    assert meta["created_at"] is None and meta["updated_at"] is None


@pytest.mark.parametrize(
    ("markdown", "length"),
    [
        ("", 0),
        ("# Title\n\n> **Note:** hi", len("TitleNotehi") + 1),  # ":" counts, markup does not
        ("![diagram](https://x/y.png)", len("diagram")),
        ("[Setup](https://x/display/DEV/Setup)", len("Setup")),
        ("| a | b |\n| --- | --- |", 2),
        ("```python\nx = 1\n```", len("pythonx=1")),
    ],
)
def test_visible_length_ignores_markup_and_urls(markdown: str, length: int) -> None:
    assert visible_length(markdown) == length


@pytest.mark.parametrize(
    ("status", "flags", "reason"),
    [
        ("current", {}, None),
        ("trashed", {}, "trashed"),
        ("trashed", {"skip_archived": False, "skip_drafts": False}, "trashed"),
        ("archived", {}, "archived"),
        ("archived", {"skip_archived": False}, None),
        ("draft", {}, "draft"),
        ("draft", {"skip_drafts": False}, None),
    ],
)
def test_should_skip_by_status(
    status: str, flags: dict[str, bool], reason: str | None, settings: Settings
) -> None:
    configured = settings.model_copy(update=flags)
    text = "Plenty of words on this page to keep it."
    assert should_skip(make_page(status=status), text, configured) == reason


def test_should_skip_near_empty_pages_by_converted_text(settings: Settings) -> None:
    page = make_page()
    # A body full of markup but with almost no words is near-empty.
    markdown = "![](https://x/a.png)\n\n| x |\n| --- |"
    assert should_skip(page, markdown, settings) == (
        "near-empty: 1 characters of text (minimum 20)"
    )
    assert should_skip(page, "Twenty or more characters here.", settings) is None
    assert should_skip(page, "", settings.model_copy(update={"min_page_chars": 0})) is None


def test_to_document_converts_and_carries_the_page() -> None:
    ctx = ConversionContext(base_url="https://x.atlassian.net/wiki", space_key="OTHER")
    doc = to_document(make_page(), "Operations", ctx)
    assert doc.markdown == (
        "# Deploy\n\nRoll out with care; see "
        "[plan.pdf](https://x.atlassian.net/wiki/download/attachments/123/plan.pdf).\n\n"
        "**Rollout**\n```bash\nkubectl apply -f app.yaml\n```"
    )
    assert doc.code_blocks == (
        CodeBlock("bash", "kubectl apply -f app.yaml", 1, ("Deploy",), "Rollout"),
    )
    assert doc.breadcrumb == "Operations > Home > Runbooks > Deploying"
    assert (doc.page_id, doc.space_key, doc.type, doc.status) == ("123", "OPS", "page", "current")
    assert (doc.title, doc.version, doc.author) == ("Deploying", 7, "Ada Lovelace")
    assert (doc.created_at, doc.updated_at) == (CREATED, UPDATED)
    assert doc.labels == ("runbook", "k8s")
    assert doc.ancestors == (("1", "Home"), ("5", "Runbooks"))
    assert doc.web_url == "https://x.atlassian.net/wiki/spaces/OPS/pages/123/Deploying"


def test_to_document_links_into_the_pages_own_space() -> None:
    page = make_page(body_storage='<p><ac:link><ri:page ri:content-title="Intro"/></ac:link></p>')
    doc = to_document(page, "Operations", ConversionContext(base_url="https://c.example.com"))
    assert doc.markdown == "[Intro](https://c.example.com/display/OPS/Intro)"


def test_to_document_without_body() -> None:
    doc = to_document(make_page(body_storage=None), "Operations", ConversionContext())
    assert doc.markdown == "" and doc.code_blocks == ()
