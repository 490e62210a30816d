"""`confluence-rag demo` (what `make demo` runs): the whole product on one laptop in a minute.

It starts the Confluence emulator (Cloud flavour, serving the sample site: an invented company's
Engineering and Operations spaces), adds it as a source exactly as a user would (URL, email, API
token, spaces), crawls it with the progress bar, prints three sample searches, then serves the
HTTP API (and the web UI, where present) on localhost until Ctrl-C. The demo keeps its index in
its own folder (``<data dir>/demo``), so it never mixes with real sources; run again, it syncs
that index instead of rebuilding it.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from confluence_rag.cli.emulator_cmd import GENERATED_HELP, emulator_banner, emulator_config
from confluence_rag.cli.errors import handle_errors
from confluence_rag.cli.jobs_cmd import run_job_in_foreground
from confluence_rag.cli.progress_view import report_outcome
from confluence_rag.cli.runtime import console, load_settings, run
from confluence_rag.cli.search_cmd import print_hits
from confluence_rag.cli.serve_cmd import GRACEFUL_SHUTDOWN_SECONDS
from confluence_rag.errors import ConfigurationError, SourceNotFound
from confluence_rag.presenters import hit_out
from confluence_rag.records import SourceRecord

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

    from confluence_rag.emulator import EmulatorServer
    from confluence_rag.services import Services

# What a new engineer asks first; each is answered by one page of the sample site.
SAMPLE_QUERIES = (
    "how do we roll back a failed deployment",
    "how do I get access to the production database",
    "what do I do when a page wakes me up at night",
)
DEFAULT_EMULATOR_PORT = 8090


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def quiet_server(config: Any) -> uvicorn.Server:
    """A uvicorn server that stops on Ctrl-C without re-raising it afterwards, so the demo can
    close its services and the emulator in order and exit 0. (Built here, not at import: the
    CLI imports uvicorn only when a command serves.)"""
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {
                sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return QuietServer(config)


def start_emulator(generated: int, port: int) -> EmulatorServer:
    """The emulator on ``port`` (stable source id across runs), or any free port if taken."""
    from confluence_rag.emulator import EmulatorServer

    config = emulator_config(generated, flavour="cloud", seed=1)
    try:
        return EmulatorServer(config, port=port).start()
    except ConfigurationError:
        if port == 0:
            raise
        console.print(f"[yellow]Port {port} is busy; the emulator takes a free port.[/]")
        return EmulatorServer(config, port=0).start()


async def _demo_source(services: Services, server: EmulatorServer) -> tuple[SourceRecord, str]:
    """Add the emulator's spaces as a source (or reuse it) and say which job to run."""
    from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL
    from confluence_rag.ingest.sources import NewSource, validate_new_source

    config = server.config
    new = NewSource(
        confluence_url=server.site_url,
        user_email=DEMO_EMAIL,
        api_token=DEMO_API_TOKEN,
        space_keys=(config.space_key, *config.extra_spaces),
        flavour="cloud",
        tags=("demo",),
    )
    source_id = validate_new_source(new, services.settings).source_id
    try:
        source = await services.sources.get(source_id)
    except SourceNotFound:
        pass
    else:
        console.print(f"Reusing the demo source {source.id}: syncing it.", highlight=False)
        return source, "sync"
    source, _ = await services.sources.add(new, start=False)
    console.print(f"[green]Added[/] source {source.id}", highlight=False)
    return source, "crawl"


@handle_errors
def demo(
    port: int = typer.Option(8080, min=1, max=65535, help="Port of the API (and web UI)."),
    emulator_port: int = typer.Option(
        DEFAULT_EMULATOR_PORT, min=0, max=65535, help="Port of the emulator (0: any free port)."
    ),
    generated: int = typer.Option(0, min=0, max=20000, metavar="N", help=GENERATED_HELP),
    query: Annotated[
        list[str] | None,
        typer.Option("--query", "-q", help="A search to print instead of the samples; repeatable."),
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the demo index lives (default: <data dir>/demo).")
    ] = None,
    no_serve: bool = typer.Option(
        False, "--no-serve", help="Crawl and search, then exit instead of serving."
    ),
) -> None:
    """Start a local Confluence, add it as a source, crawl it, search it, then serve the API."""
    from confluence_rag.services import build_services

    base = load_settings()
    settings = load_settings(data_dir=data_dir or base.data_dir / "demo")
    if not no_serve:
        check_port_free(port)
    server = start_emulator(generated, emulator_port)
    try:
        for line in emulator_banner(server):
            console.print(line, highlight=False)
        console.print(f"Demo index: {settings.data_dir}", highlight=False)

        async def main() -> None:
            async with build_services(settings) as services:
                source, kind = await _demo_source(services, server)
                job = await run_job_in_foreground(services, source.id, kind)
                report_outcome(job, console)
                for text in query or SAMPLE_QUERIES:
                    hits = await services.search.search(text, limit=3, mode="pages")
                    console.print(f'\n[bold]Sample search:[/] "{text}"', highlight=False)
                    print_hits([hit_out(hit) for hit in hits])
                if no_serve:
                    return
                await _serve(services, port)

        run(main)
    finally:
        server.stop()


async def _serve(services: Services, port: int) -> None:
    import uvicorn

    from confluence_rag.api.app import create_app

    app = create_app(services.settings, services=services)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = quiet_server(config)
    url = f"http://127.0.0.1:{port}"
    lines = [f"\n[bold green]Serving[/] {url}"]
    if serves_path(app, "/"):
        lines.append(f"  Web UI:    {url}/")
    lines.append(f"  API docs:  {url}/docs")
    if serves_path(app, "/mcp"):
        lines.append(f"  MCP:       {url}/mcp  (streamable HTTP; or `confluence-rag mcp`)")
    console.print(
        "\n".join(lines) + "\n"
        f"  Search:    curl -s {url}/api/search -H 'Content-Type: application/json' "
        f'-d \'{{"query": "deployment"}}\'\n'
        "Press Ctrl-C to stop.",
        highlight=False,
    )
    await server.serve()
    console.print("Stopped.")


def serves_path(app: FastAPI, path: str) -> bool:
    """Whether ``GET path`` reaches a route (the web UI is optional: another module adds it)."""
    from starlette.routing import Match

    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "headers": []}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def check_port_free(port: int) -> None:
    """Fail before the crawl, not after it, when the API port is taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise ConfigurationError(
                f"cannot serve on 127.0.0.1:{port}: {error.strerror}; pick another with --port"
            ) from None
