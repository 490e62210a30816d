"""`confluence-rag worker`: run crawl and sync jobs from the shared PostgreSQL queue, no HTTP.

Start as many as the crawl needs, on one machine or several, all with the same
``CONFLUENCE_RAG_DATABASE_URL`` (and the same secret key, to read the stored credentials). Each
claims queued jobs with a lease (``FOR UPDATE SKIP LOCKED``), renews it by heartbeat, and takes
over jobs whose worker died once their lease lapses; ``serve`` runs jobs the same way next to
them. SIGINT or SIGTERM stops a worker gracefully: its jobs go back to the queue, where another
runner (or this one, restarted) resumes them from their checkpoints. A second signal quits at
once (the lease then lapses and another worker takes over).

SQLite is refused: one file has one writer, so several processes would only queue behind each
other; with SQLite, ``serve`` (or a foreground ``crawl``) runs jobs in its own process.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.runtime import load_settings, run
from confluence_rag.errors import ConfigurationError
from confluence_rag.settings import Settings

# How long a graceful stop waits for running jobs to write their checkpoint and requeue.
STOP_SECONDS = 20.0

logger = logging.getLogger(__name__)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker)


def require_postgres(settings: Settings) -> str:
    """The database URL, or a clear refusal when it is not PostgreSQL."""
    if settings.backend != "postgres":
        raise ConfigurationError(
            "`confluence-rag worker` needs PostgreSQL: set CONFLUENCE_RAG_DATABASE_URL="
            "postgresql://user:password@host/db on every worker and on `serve`. With SQLite "
            "(the default), `confluence-rag serve` or a foreground `confluence-rag crawl` runs "
            "jobs in its own process: one SQLite file has one writer, so extra worker "
            "processes would only wait for each other."
        )
    return (settings.database_url or "").strip()


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    """Run jobs until ``stop`` is set, then stop gracefully (jobs go back to the queue)."""
    from confluence_rag.services import build_services, redacted

    async with build_services(settings) as services:
        runner = services.jobs
        runner.start()
        # One line on stdout that scripts (and tests) wait for; details go to the log.
        print(
            f"worker {runner.worker_id} ready: up to {settings.max_concurrent_jobs} job(s) at "
            f"once from {redacted(settings.database_url or '')}",
            flush=True,
        )
        await stop.wait()
        running = runner.running_here
        logger.info(
            "stopping: %d running job(s) go back to the queue: %s",
            len(running),
            ", ".join(running) or "none",
        )
        await runner.stop(timeout=STOP_SECONDS)
    print(f"worker {runner.worker_id} stopped", flush=True)


async def _main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        logger.info("%s received: stopping gracefully", signal.Signals(signum).name)
        stop.set()
        # A second signal gets the default behaviour: quit now.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, int(sig))
    await run_worker(settings, stop)


@handle_errors
def worker(
    jobs: int | None = typer.Option(
        None,
        "--jobs",
        "-j",
        min=1,
        max=64,
        help="Jobs this worker runs at once (default: CONFLUENCE_RAG_MAX_CONCURRENT_JOBS, 2).",
    ),
) -> None:
    """Run crawl/sync jobs from the PostgreSQL queue until SIGINT/SIGTERM (no HTTP).

    Start several (here or on other machines, same CONFLUENCE_RAG_DATABASE_URL and secret key)
    to crawl in parallel; a job whose worker dies is taken over when its lease lapses.
    """
    overrides = {} if jobs is None else {"max_concurrent_jobs": jobs}
    settings = load_settings(**overrides)
    require_postgres(settings)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run(lambda: _main(settings))
