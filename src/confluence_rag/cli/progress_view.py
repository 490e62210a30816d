"""Following a job in the terminal: a Rich progress bar (stage, percent, pages, pages/s, ETA),
the job's log lines printed above it, and a clean cancel on Ctrl-C.

The bar reads the persisted job through ``services.jobs.watch``, so it shows the same thing
whether the job runs in this process or in another one (a server, a worker).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from confluence_rag.cli.errors import EXIT_FAILURE
from confluence_rag.cli.runtime import on_interrupt
from confluence_rag.ingest.progress import pages_done
from confluence_rag.presenters import progress_out
from confluence_rag.records import JobRecord

if TYPE_CHECKING:
    from confluence_rag.services import Services

CANCEL_WAIT_SECONDS = 15.0


def _new_lines(log: list[str], printed: list[str]) -> list[str]:
    """Lines of ``log`` not yet printed. The log is a bounded tail, so find where we were."""
    if not printed:
        return list(log)
    last = printed[-1]
    for index in range(len(log) - 1, -1, -1):
        if log[index] == last:
            return list(log[index + 1 :])
    return list(log)


async def _watch(services: Services, job_id: str, console: Console) -> JobRecord:
    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[pages]} pages"),
        TextColumn("{task.fields[rate]} pages/s"),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=console,
    )
    printed: list[str] = []
    last: JobRecord | None = None
    with progress:
        task = progress.add_task("queued", total=100, pages=0, rate="-")
        async for job in services.jobs.watch(job_id):
            last = job
            for line in _new_lines(list(job.log or ()), printed):
                progress.console.print(f"  {line}", highlight=False, markup=False)
                printed.append(line)
            rate = progress_out(job).pages_per_second
            progress.update(
                task,
                completed=float(job.percent or 0.0),
                description=f"{job.kind} {job.stage or job.status}",
                pages=pages_done(job.counters),
                rate=f"{rate:.1f}" if rate is not None else "-",
            )
    assert last is not None  # watch always yields the job at least once
    return last


async def follow_job(services: Services, job_id: str, console: Console) -> JobRecord:
    """Show the job until it ends; Ctrl-C cancels it (what was stored is kept) and exits 130."""

    async def cancel() -> None:
        console.print("[yellow]Cancelling the job...[/]")
        await services.jobs.cancel(job_id)
        job = await services.jobs.wait(job_id, timeout=CANCEL_WAIT_SECONDS)
        done = pages_done(job.counters)
        console.print(
            f"Job {job_id} is {job.status}; the {done} pages done so far are kept.",
            highlight=False,
        )

    return await on_interrupt(_watch(services, job_id, console), cancel)


def summarise(job: JobRecord) -> str:
    counters = job.counters or {}
    parts = [
        f"{name.removeprefix('pages_')} {counters.get(name, 0)}"
        for name in (
            "pages_added",
            "pages_updated",
            "pages_deleted",
            "pages_restored",
            "pages_unchanged",
            "pages_skipped",
        )
        if counters.get(name)
    ]
    failed = counters.get("pages_failed", 0)
    text = f"{pages_done(counters)} pages" + (f" ({', '.join(parts)})" if parts else "")
    text += f", {counters.get('chunks_embedded', 0)} chunks embedded"
    text += f", {counters.get('chunks_reused', 0)} reused"
    if failed:
        text += f", [red]{failed} failed[/] (see the job log)"
    duration = (job.result or {}).get("duration_seconds")
    if duration is not None:
        text += f" in {float(duration):.1f} s"
    elif job.started_at and job.finished_at:
        text += f" in {(job.finished_at - job.started_at).total_seconds():.1f} s"
    return text


def report_outcome(job: JobRecord, console: Console) -> None:
    """Print how the job ended; a job that did not complete makes the command fail."""
    if job.status == "completed":
        console.print(f"[green]Done:[/] {job.kind} of {job.source_id}: {summarise(job)}")
        return
    if job.status == "failed":
        console.print(f"[bold red]The {job.kind} failed:[/] {job.error}", highlight=False)
    else:
        console.print(f"[yellow]The {job.kind} ended {job.status}.[/] {summarise(job)}")
    raise typer.Exit(EXIT_FAILURE)
