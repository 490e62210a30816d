"""`confluence-rag emulator` and `confluence-rag demo`."""

from __future__ import annotations

import typer

from confluence_rag.cli.errors import handle_errors


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)


@handle_errors
def emulator(
    port: int = typer.Option(8090, help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    flavour: str = typer.Option("cloud", help="cloud (paths under /wiki) or datacenter."),
    pages: int = typer.Option(300, min=0, help="Pages to generate in the sample space."),
    seed: int = typer.Option(1, help="Generator seed: the same seed gives the same space."),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every response."),
    faults: str = typer.Option("", help="Fault spec, e.g. '429:0.1,500:0.05' (see docs)."),
) -> None:
    """Run a local Confluence (Cloud or Data Center flavour) with a generated sample space."""
    raise NotImplementedError  # filled in by the emulator work
