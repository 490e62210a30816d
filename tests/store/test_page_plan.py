"""``plan_page_write``: the decisions of ``write_page`` as pure code (no database)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from confluence_rag.store.page_plan import ExistingPage, OldChunk, plan_page_write
from tests.store import builders as b


def _stored(texts: list[str], **page: object) -> tuple[ExistingPage, list[OldChunk]]:
    document = b.document("1")
    chunks = b.chunks(document, texts)
    existing = ExistingPage(
        id=7,
        version=document.version,
        is_deleted=False,
        title=document.title,
        space_key=document.space_key,
        type=document.type,
        updated_at=document.updated_at,
        labels=("ops",),
    )
    old = [
        OldChunk(id=100 + n, content_hash=c.content_hash, heading_path=c.heading_path, text=c.text)
        for n, c in enumerate(chunks)
    ]
    return replace(existing, **page), old  # type: ignore[arg-type]


def test_a_new_page_is_created_with_every_chunk_written() -> None:
    document = b.document("1")
    plan = plan_page_write(b.SOURCE, None, [], document, b.chunks(document, ["a", "b"]))
    result = plan.result(page_id=3, code_examples=0)
    assert (plan.action, result.created, result.chunks_written, result.chunks_removed) == (
        "create", True, 2, 0,
    )  # fmt: skip
    assert result.page_key == f"{b.SOURCE}:1"


def test_the_same_version_and_content_only_refreshes() -> None:
    existing, old = _stored(["a", "b"])
    document = b.document("1")
    plan = plan_page_write(b.SOURCE, existing, old, document, b.chunks(document, ["a", "b"]))
    result = plan.result(page_id=7, code_examples=1)
    assert plan.action == "refresh" and result.unchanged and not plan.filters_changed
    assert (result.chunks_written, result.chunks_reused, result.code_examples) == (0, 2, 1)


@pytest.mark.parametrize(
    ("page", "texts"),
    [
        ({"version": 0}, ["a", "b"]),  # an older version was stored
        ({"title": "Old"}, ["a", "b"]),  # renamed without a new version
        ({}, ["a", "c"]),  # different content
        ({"is_deleted": True}, ["a", "b"]),  # restored
    ],
)
def test_anything_else_rewrites_and_counts_the_reuse(
    page: dict[str, object], texts: list[str]
) -> None:
    existing, old = _stored(["a", "b"], **page)
    document = b.document("1")
    plan = plan_page_write(b.SOURCE, existing, old, document, b.chunks(document, texts))
    result = plan.result(page_id=7, code_examples=0)
    assert plan.action == "rewrite" and not result.created and not result.unchanged
    assert result.chunks_removed == 2 and result.chunks_written == 2
    assert result.chunks_reused == (2 if texts == ["a", "b"] else 1)
    assert result.undeleted == bool(page.get("is_deleted"))


def test_a_label_change_without_a_new_version_moves_the_filters() -> None:
    existing, old = _stored(["a"])
    document = b.document("1", labels=("ops", "Runbook"))
    plan = plan_page_write(b.SOURCE, existing, old, document, b.chunks(document, ["a"]))
    assert plan.action == "refresh" and plan.filters_changed
