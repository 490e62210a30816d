"""A small index for search tests: four pages in two spaces, written through a real store
with the deterministic hash embedder."""

from __future__ import annotations

from datetime import UTC, datetime

from confluence_rag.store import Store
from tests.search.hash_embedder import HashEmbedder
from tests.store import builders as b

PAGES = {
    # page id: (title, space, labels, type, chunks)
    "1": (
        "Deploy guide",
        "DEV",
        ("ops",),
        "page",
        ["Run helm upgrade to deploy the api service", "Rollback with helm rollback"],
    ),
    "2": (
        "Database runbook",
        "OPS",
        ("db", "ops"),
        "page",
        ["Restart postgres with systemctl restart postgresql", "Vacuum tables weekly"],
    ),
    "3": (
        "Team news",
        "DEV",
        (),
        "blogpost",
        ["We shipped the new dashboard <script>alert(1)</script>", "Lunch on friday"],
    ),
    "4": (
        "API keys",
        "OPS",
        ("security",),
        "page",
        ["Rotate the api key every 90 days", "Keys live in the vault"],
    ),
}


async def index_pages(store: Store, embedder: HashEmbedder) -> None:
    await store.ensure_index_model(embedder.model_id, embedder.dimension)
    await store.create_source(b.source())
    for page_id, (title, space, labels, kind, texts) in PAGES.items():
        doc = b.document(
            page_id,
            title=title,
            space=space,
            labels=labels,
            page_type=kind,
            updated_at=datetime(2025, int(page_id), 1, tzinfo=UTC),
            code=[("bash", "helm upgrade api ./chart")] if page_id == "1" else [],
            author="Grace Hopper" if page_id == "4" else "Ada Lovelace",
        )
        parts = b.chunks(doc, texts)
        vectors = await embedder.embed_documents([c.embed_text for c in parts])
        await store.write_page(b.SOURCE, doc, parts, vectors)
