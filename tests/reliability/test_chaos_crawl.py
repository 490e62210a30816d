"""Chaos crawl: a 1,000-page space answering ~30% of requests with a fault still gets crawled,
and every eligible page is stored exactly once at its current version.

The faults are the issue's mix (``crawl_audit.chaos_faults``): 429 with ``Retry-After: 1``, 503
with ``Retry-After: 1``, 500, 504, connections dropped half-way through a response, and 2 s
latency spikes. The emulator's silent ``limit`` caps are lowered so the crawl makes ~150+
requests instead of ~50, enough for every kind to be met (the emulator draws faults from a
seeded generator per rule, so with this seed each kind fires within its first handful of draws).
Embeddings come from the fake OpenAI-compatible server, so the test measures fault handling,
not the model. ``bench/chaos.py`` is the full-scale version (default caps, any size, MiniLM
optionally), run by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from confluence_rag.emulator.config import LimitCaps
from confluence_rag.settings import Settings
from tests.ingest.conftest import run
from tests.ingest.fake_embeddings import FakeEmbeddingServer
from tests.plugins.emulator import EmulatorFactory
from tests.reliability.crawl_audit import (
    audit_sqlite,
    chaos_faults,
    crawl_once,
    eligible_ids,
    fault_counts,
)

PAGES = 1000
FAULT_RATE = 0.30


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_chaos_crawl_1000_pages_30_percent_faults(
    emulator_factory: EmulatorFactory, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    server = emulator_factory(
        "cloud",
        pages=PAGES,
        seed=11,
        extra_spaces={},
        faults=chaos_faults(FAULT_RATE, retry_after=1, spike_ms=2000),
        caps=LimitCaps(body=10, expand=40, bare=100),
    )
    with FakeEmbeddingServer(dimension=32) as embeddings:
        for name, value in embeddings.settings_env().items():
            monkeypatch.setenv(name, value)
        # Retry-After (1 s) is honoured as sent: the clamp stays above it.
        settings = Settings(data_dir=isolated_env, max_retries=10, retry_after_max_seconds=5)
        expected = eligible_ids(server.state, settings)
        outcome = run(crawl_once(settings, server, timeout=480))

    job = outcome.job
    assert job.status == "completed", job.error
    c = job.counters
    assert c["pages_failed"] == 0
    assert c["pages_listed"] == len(server.state.current_ids())

    # The faults really happened, at about the rate asked, and every kind was met.
    requests = list(server.state.requests)
    failed = [r for r in requests if r.fault is not None]
    fired = fault_counts(server.state)
    assert len(requests) > 120
    assert 0.15 < len(failed) / len(requests) < 0.40, (len(failed), len(requests))
    assert {kind for kind, n in fired.items() if n} == {
        "429",
        "503",
        "500",
        "504",
        "drop",
        "latency",
    }

    # Every eligible page exactly once, at its current version, with whole chunk sequences.
    audit = audit_sqlite(settings.sqlite_path, outcome.source_id)
    assert audit.clean, audit.problems()
    assert set(audit.versions) == expected
    assert audit.page_rows == len(expected) and not audit.deleted
    for page_id, version in audit.versions.items():
        assert version == server.state.content(page_id).version
    assert c["pages_processed"] == len(expected)
    assert c["pages_skipped"] == len(server.state.current_ids()) - len(expected)
