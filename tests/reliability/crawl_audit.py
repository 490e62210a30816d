"""What the reliability tests and ``bench/chaos.py`` check after a crawl that was hurt.

- ``chaos_faults(rate)``: the issue's mix of faults (429 with Retry-After, 503, 500, 504,
  dropped connections, 2 s latency spikes) with per-kind probabilities chosen so that a request
  meets *some* fault with probability ``rate`` (the emulator draws each rule independently).
- ``eligible_ids(state, settings)``: the pages a crawl must store, decided from the emulator's
  own records (current pages whose converted text is long enough), not from the crawl's counters.
- ``audit_sqlite(path, source_id)``: reads the database file directly (read-only) and reports
  duplicates a unique index would not catch (a chunk ordinal twice, an FTS row missing or extra),
  plus SQLite's own integrity check.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from confluence_rag.content.metadata import visible_length
from confluence_rag.content.storage import storage_to_markdown
from confluence_rag.emulator import (
    DEMO_API_TOKEN,
    DEMO_EMAIL,
    DEMO_PAT,
    EmulatorServer,
    FaultRule,
)
from confluence_rag.emulator.state import EmulatorState
from confluence_rag.ingest.sources import NewSource
from confluence_rag.records import JobRecord
from confluence_rag.services import build_services
from confluence_rag.settings import Settings

# Relative weights of the fault kinds in the mix (429 most common, like a real rate limit).
FAULT_WEIGHTS: dict[str, float] = {
    "429": 0.30,
    "503": 0.18,
    "500": 0.16,
    "504": 0.14,
    "drop": 0.12,
    "latency": 0.10,
}


def chaos_faults(
    rate: float = 0.30, *, retry_after: int = 1, spike_ms: float = 2000.0
) -> list[FaultRule]:
    """Rules that together hit a request with probability ``rate``.

    The emulator draws every rule independently, so rule probabilities ``p_i = 1 - (1-rate)^w_i``
    (weights summing to 1) make ``1 - prod(1 - p_i) == rate``. A latency spike delays the
    answer and lets the request succeed; every other kind fails it.
    """
    total = sum(FAULT_WEIGHTS.values())
    rules: list[FaultRule] = []
    for kind, weight in FAULT_WEIGHTS.items():
        p = 1.0 - (1.0 - rate) ** (weight / total)
        if kind == "latency":
            rules.append(FaultRule(kind="latency", probability=p, latency_ms=spike_ms))
        elif kind in ("429", "503"):
            rules.append(FaultRule(kind=kind, probability=p, retry_after=retry_after))  # type: ignore[arg-type]
        else:
            rules.append(FaultRule(kind=kind, probability=p))  # type: ignore[arg-type]
    return rules


def eligible_ids(
    state: EmulatorState, settings: Settings, space_key: str | None = None
) -> set[str]:
    """Ids a correct crawl stores: current content of the space with enough text to index."""
    ids = state.current_ids(space_key)
    keep: set[str] = set()
    for content_id in ids:
        record = state.content(content_id)
        if visible_length(storage_to_markdown(record.body)) >= settings.min_page_chars:
            keep.add(content_id)
    return keep


@dataclass
class IndexAudit:
    """What one source's rows in a SQLite index file look like."""

    versions: dict[str, int] = field(default_factory=dict)  # live pages: id -> version
    deleted: set[str] = field(default_factory=set)
    page_rows: int = 0
    duplicate_pages: list[str] = field(default_factory=list)
    duplicate_chunks: list[tuple[str, int]] = field(default_factory=list)  # (page id, ordinal)
    ordinal_gaps: list[str] = field(default_factory=list)  # pages whose ordinals are not 0..n-1
    pages_without_chunks: list[str] = field(default_factory=list)
    live_chunks: int = 0
    fts_rows: int = 0
    integrity: str = ""

    @property
    def clean(self) -> bool:
        return (
            not self.duplicate_pages
            and not self.duplicate_chunks
            and not self.ordinal_gaps
            and not self.pages_without_chunks
            and self.live_chunks == self.fts_rows
            and self.integrity == "ok"
        )

    def problems(self) -> str:
        return (
            f"duplicate pages {self.duplicate_pages[:5]}, duplicate chunks "
            f"{self.duplicate_chunks[:5]}, ordinal gaps {self.ordinal_gaps[:5]}, pages without "
            f"chunks {self.pages_without_chunks[:5]}, live chunks {self.live_chunks} vs FTS rows "
            f"{self.fts_rows}, integrity {self.integrity!r}"
        )


def audit_sqlite(path: Path, source_id: str) -> IndexAudit:
    """Audit ``source_id`` in the SQLite file at ``path`` (opened read-only, WAL respected)."""
    audit = IndexAudit()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(
            "SELECT id, confluence_page_id, confluence_version, is_deleted FROM pages"
            " WHERE source_id = ?",
            (source_id,),
        ).fetchall()
        audit.page_rows = len(rows)
        seen: set[str] = set()
        row_to_page: dict[int, str] = {}
        for row_id, page_id, version, is_deleted in rows:
            if page_id in seen:
                audit.duplicate_pages.append(page_id)
            seen.add(page_id)
            row_to_page[row_id] = page_id
            if is_deleted:
                audit.deleted.add(page_id)
            else:
                audit.versions[page_id] = version
        ordinals: dict[int, list[int]] = {}
        for row_id, ordinal in db.execute(
            "SELECT c.page_id, c.ordinal FROM chunks c JOIN pages p ON p.id = c.page_id"
            " WHERE p.source_id = ? AND NOT p.is_deleted",
            (source_id,),
        ):
            ordinals.setdefault(row_id, []).append(ordinal)
            audit.live_chunks += 1
        for row_id, page_id in row_to_page.items():
            if page_id in audit.deleted:
                continue
            found = sorted(ordinals.get(row_id, []))
            if not found:
                audit.pages_without_chunks.append(page_id)
                continue
            audit.duplicate_chunks.extend(
                (page_id, o) for o in sorted(set(found)) if found.count(o) > 1
            )
            if sorted(set(found)) != list(range(len(set(found)))):
                audit.ordinal_gaps.append(page_id)
        (audit.fts_rows,) = db.execute(
            "SELECT count(*) FROM chunks_fts WHERE rowid IN (SELECT c.id FROM chunks c"
            " JOIN pages p ON p.id = c.page_id WHERE p.source_id = ? AND NOT p.is_deleted)",
            (source_id,),
        ).fetchone()
        (audit.integrity,) = db.execute("PRAGMA integrity_check").fetchone()
    finally:
        db.close()
    return audit


@dataclass
class CrawlOutcome:
    """One crawl through ``build_services``: the source, the finished job and the time taken."""

    source_id: str
    job: JobRecord
    seconds: float


async def crawl_once(settings: Settings, server: EmulatorServer, timeout: float) -> CrawlOutcome:
    """Add the emulator's main space as a source and run its crawl to the end in this process."""
    started = time.monotonic()
    async with build_services(settings) as services:
        cloud = server.config.flavour == "cloud"
        source, job = await services.sources.add(
            NewSource(
                confluence_url=server.site_url,
                flavour=server.config.flavour,
                user_email=DEMO_EMAIL if cloud else None,
                api_token=DEMO_API_TOKEN if cloud else DEMO_PAT,
                space_keys=(server.config.space_key,),
            )
        )
        assert job is not None
        services.jobs.start()
        done = await services.jobs.wait(job.id, timeout=timeout)
    return CrawlOutcome(source.id, done, time.monotonic() - started)


def fault_counts(state: EmulatorState) -> dict[str, int]:
    """How often each fault kind fired (latency spikes included), from the emulator's injector."""
    return state.faults.fired()
