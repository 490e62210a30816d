"""`confluence-rag doctor`: is this installation healthy? One table, a non-zero exit if not.

Checks, in an order where each one's failure explains the next:

1. **disk**: free space where the data dir lives (a full disk fails crawls), and that the data
   dir is writable.
2. **database**: the store's own diagnosis (``store.diagnose``), which looks without changing
   anything (the doctor never repairs or migrates behind your back): SQLite's integrity check on
   a read-only connection, its journal mode and schema revision against the newest migration
   this code knows; PostgreSQL a connection and the same revision check.
3. **embedding model**: one real query embedding with the configured embedder, offline for the
   local model (its weights ship in a package), and whether it matches the model that built the
   index (vectors of different models never mix).
4. **source <id>**: each source's stored credentials decrypted (a wrong secret key shows here)
   and ``check_access`` on each of its spaces, exactly as a crawl starts.

Exit status: 0 when nothing failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import typer
from rich.table import Table

from confluence_rag.cli.errors import EXIT_FAILURE, handle_errors
from confluence_rag.cli.runtime import console, load_settings, run
from confluence_rag.errors import ConfluenceRagError
from confluence_rag.records import SourceRecord, StoreDiagnosis
from confluence_rag.settings import Settings

if TYPE_CHECKING:  # the services load the model stack: imported when doctor runs
    from confluence_rag.services import Services

Status = Literal["ok", "warn", "fail", "skip"]
STYLES: dict[Status, str] = {"ok": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}
DEFAULT_MIN_FREE_MB = 500


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    status: Status
    detail: str


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)


@handle_errors
def doctor(
    min_free_mb: int = typer.Option(
        DEFAULT_MIN_FREE_MB, min=0, help="Free disk space (MB) below which the disk check fails."
    ),
) -> None:
    """Check the database, the embedding model, every source and free disk space."""
    settings = load_settings()
    results = run(lambda: run_checks(settings, min_free_bytes=min_free_mb * 1024 * 1024))
    table = Table(title="confluence-rag doctor", show_lines=False)
    table.add_column("Check")
    table.add_column("Status")
    table.add_column("Detail", overflow="fold")
    for result in results:
        style = STYLES[result.status]
        table.add_row(result.name, f"[{style}]{result.status.upper()}[/]", result.detail)
    console.print(table)
    failed = [r.name for r in results if r.status == "fail"]
    if failed:
        console.print(f"[bold red]{len(failed)} check(s) failed:[/] {', '.join(failed)}")
        raise typer.Exit(EXIT_FAILURE)
    console.print("[green]All checks passed.[/]")


async def run_checks(settings: Settings, *, min_free_bytes: int) -> list[CheckResult]:
    """Every check, in order; later checks are skipped when what they need is broken."""
    results = [check_disk(settings.data_dir, min_free_bytes)]
    database = check_database(settings)
    results.append(database)
    if database.status == "fail":
        results.append(CheckResult("embedding model", "skip", "needs a readable database"))
        results.append(CheckResult("sources", "skip", "needs a readable database"))
        return results
    from confluence_rag.services import build_services

    try:
        async with build_services(settings) as services:
            results.append(await check_embedder(services))
            results.extend(await check_sources(services))
    except ConfluenceRagError as error:
        results.append(CheckResult("services", "fail", error.message))
    return results


def check_disk(data_dir: Path, min_free_bytes: int) -> CheckResult:
    existing = data_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        usage = shutil.disk_usage(existing)
    except OSError as error:
        return CheckResult("disk", "fail", f"cannot read free space of {existing}: {error}")
    free = f"{usage.free / 2**30:.1f} GiB free of {usage.total / 2**30:.1f} GiB at {existing}"
    if usage.free < min_free_bytes:
        wanted = min_free_bytes / 2**20
        return CheckResult("disk", "fail", f"{free}: below the {wanted:.0f} MB minimum")
    if data_dir.exists():
        try:
            with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".doctor-"):
                pass
        except OSError as error:
            return CheckResult("disk", "fail", f"{free}, but {data_dir} is not writable: {error}")
    return CheckResult("disk", "ok", free)


def check_database(settings: Settings) -> CheckResult:
    """The store's own diagnosis (read-only: nothing migrated, created or repaired), in words."""
    from confluence_rag.services import diagnose_store

    try:
        found = diagnose_store(settings)
    except ConfluenceRagError as error:
        return CheckResult("database", "fail", error.message)
    if found.backend == "postgres":
        if not found.connected:
            return CheckResult("database", "fail", f"PostgreSQL not reachable: {found.error}")
        return _with_revision("PostgreSQL: connected", found)
    path = found.location
    if not found.exists:
        return CheckResult("database", "warn", f"no index yet at {path} (created on first use)")
    if not found.connected:
        return CheckResult("database", "fail", f"cannot open {path}: {found.error}")
    if found.error is not None:
        return CheckResult(
            "database", "fail", f"{path} is damaged or not a database: {found.error}"
        )
    if found.problems:
        shown = "; ".join(found.problems[:3])
        return CheckResult(
            "database",
            "fail",
            f"integrity check of {path} found problems: {shown}. Restore a backup or re-crawl "
            "into a new data dir.",
        )
    detail = f"SQLite {path}: integrity ok, journal {found.details.get('journal_mode', '?')}"
    return _with_revision(detail, found)


def _with_revision(detail: str, found: StoreDiagnosis) -> CheckResult:
    head, revision = found.head_revision, found.schema_revision
    if found.at_head:
        return CheckResult("database", "ok", f"{detail}, schema at head ({head})")
    if revision is None:
        return CheckResult("database", "warn", f"{detail}, not migrated yet (done on first use)")
    return CheckResult(
        "database",
        "warn",
        f"{detail}, schema at {revision}, this version expects {head} (migrated on the next start)",
    )


async def check_embedder(services: Services) -> CheckResult:
    name = "embedding model"
    try:
        embedder = services.embedder
        vector = await embedder.embed_query("confluence-rag doctor")
        recorded = await services.store.get_index_model()
    except ConfluenceRagError as error:
        return CheckResult(name, "fail", error.message)
    detail = f"{embedder.model_id} ({len(vector)} dims) answers"
    if recorded is not None and (recorded.model_id, recorded.dimension) != (
        embedder.model_id,
        embedder.dimension,
    ):
        return CheckResult(
            name,
            "fail",
            f"{detail}, but the index was built by {recorded.model_id} "
            f"({recorded.dimension} dims): re-crawl, or configure that model again",
        )
    return CheckResult(name, "ok", detail)


async def check_sources(services: Services) -> list[CheckResult]:
    sources = await services.sources.list()
    if not sources:
        return [CheckResult("sources", "ok", "none yet (add one with `confluence-rag add`)")]
    return [await check_source(services, source) for source in sources]


async def check_source(services: Services, source: SourceRecord) -> CheckResult:
    """Decrypt the stored credentials and check access to every space, as a crawl starts."""
    name = f"source {source.id}"
    try:
        async with services.sources.open_client(source) as client:
            spaces = [await client.check_access(key) for key in source.space_keys]
    except ConfluenceRagError as error:
        return CheckResult(name, "fail", error.message)
    keys = ", ".join(space.key for space in spaces)
    return CheckResult(name, "ok", f"reachable, credentials accepted, spaces readable: {keys}")
