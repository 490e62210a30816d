"""The pipeline's own promises, over the real client, store and an embeddings server:
one bad page is recorded and skipped, and embedding batches span several pages."""

from __future__ import annotations

from confluence_rag.confluence.models import Page
from confluence_rag.content.models import Document
from confluence_rag.index import openai_embedder
from confluence_rag.index.models import Chunk
from confluence_rag.ingest.crawl import CrawlJob
from confluence_rag.ingest.pipeline import CrawlPlan, PagePipeline, SpaceTarget
from confluence_rag.ingest.progress import JobProgress
from confluence_rag.services import build_services
from confluence_rag.settings import Settings
from tests.ingest.conftest import new_source, run
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory


def test_one_bad_page_is_recorded_and_the_crawl_goes_on(
    fast_settings: Settings, emulator_factory: EmulatorFactory
) -> None:
    server = emulator_factory("cloud", pages=20, extra_spaces={})
    expected = server.state.current_ids("DEMO")
    bad, empty = sorted(expected)[3], sorted(expected)[5]

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            source, _ = await services.sources.add(new_source(server), start=False)
            embedder = services.embedder
            await services.store.ensure_index_model(embedder.model_id, embedder.dimension)
            crawl = CrawlJob(services.store, services.sources, lambda: embedder, fast_settings)
            progress = JobProgress(stage="checking")
            progress.declare_spaces(["DEMO"])
            async with services.sources.open_client(source) as client:
                real = crawl.preparer(source, embedder, client.api_base)

                def prepare(page: Page, space_name: str) -> tuple[Document, list[Chunk]] | str:
                    if page.id == bad:
                        raise ValueError("storage format from outer space")
                    if page.id == empty:
                        return "near-empty: 0 characters of text"
                    return real(page, space_name)

                plan = CrawlPlan(
                    source_id=source.id,
                    spaces=(SpaceTarget("DEMO", "Demo Space"),),
                    page_types=("page", "blogpost"),
                )
                await PagePipeline(
                    plan,
                    client=client,
                    store=services.store,
                    embedder=embedder,
                    prepare=prepare,
                    progress=progress,
                ).run()
            counters = progress.counters()
            assert counters["pages_failed"] == 1
            assert counters["pages_skipped"] >= 1
            assert counters["pages_processed"] + counters["pages_skipped"] + 1 == len(expected)
            assert progress.is_finished("DEMO")
            log = "\n".join(progress.log_lines)
            assert f"page {bad}" in log and "ValueError: storage format from outer space" in log
            assert f"page {empty}" in log and "near-empty" in log
            stored = await services.store.page_versions(source.id)
            assert bad not in stored and empty not in stored
            assert len(stored) == counters["pages_processed"]

    run(scenario())


def test_embedding_batches_span_pages_when_the_model_is_the_bottleneck(
    fast_settings: Settings,
    emulator_factory: EmulatorFactory,
    fake_embeddings: FakeEmbeddingServer,
) -> None:
    server = emulator_factory("cloud", pages=30, extra_spaces={})
    fake_embeddings.delay_seconds = 0.15  # a slow model: converted pages queue up meanwhile

    async def scenario() -> None:
        async with build_services(fast_settings) as services:
            _, job = await services.sources.add(new_source(server))
            assert job is not None
            services.jobs.start()
            done = await services.jobs.wait(job.id, timeout=120)
            assert done.status == "completed", done.error
            pages = done.counters["pages_processed"]
            batches = fake_embeddings.batch_sizes[1:]  # [0] is the job's one-text model check
            assert fake_embeddings.batch_sizes[0] == 1
            assert sum(batches) == done.counters["chunks_embedded"]
            batch_size = fast_settings.embed_batch_size or openai_embedder.DEFAULT_BATCH
            assert max(batches) <= batch_size
            # Chunks of several pages share a request: far fewer requests than pages.
            assert len(batches) < pages / 2
            full = sum(1 for size in batches if size == batch_size)
            # Short batches only when the model would otherwise idle (and the tail).
            assert full >= len(batches) / 2

    run(scenario())
