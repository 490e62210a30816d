"""`confluence-rag emulator` and `confluence-rag demo`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from confluence_rag.cli.errors import handle_errors

if TYPE_CHECKING:
    from confluence_rag.emulator import EmulatorServer

FAULTS_HELP = (
    "Fault spec: comma-separated KIND[:VALUE][@PROB][;OPTION...]. KIND is 429, 503, 500, 504, "
    "drop, ratelimit403 or latency. VALUE is a probability (latency: milliseconds, with @PROB). "
    "A bare 504 fires when limit x body expand exceeds the budget. OPTIONS: path~TEXT, times=N, "
    "after=N, retry-after=N|date, budget=N. Example: "
    "'429:0.1,503:0.05,500:0.05,504,drop:0.02,ratelimit403:0.05,latency:2000@0.01'."
)


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)


def emulator_banner(server: EmulatorServer) -> list[str]:
    """What a person needs to use a running emulator: URL, credentials, a first request."""
    from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT

    config = server.config
    lines = [
        f"Confluence emulator ({config.flavour}): space {config.space_key} with "
        f"{config.pages} pages (seed {config.seed}), extra spaces: "
        + (", ".join(f"{k} ({n})" for k, n in config.extra_spaces.items()) or "none"),
        f"  Site URL:  {server.site_url}",
        f"  API base:  {server.api_base}",
    ]
    if config.flavour == "cloud":
        lines += [
            f"  Email:     {DEMO_EMAIL}",
            f"  API token: {DEMO_API_TOKEN}",
            f"  Try:       curl -u {DEMO_EMAIL}:{DEMO_API_TOKEN} "
            f"'{server.api_base}/rest/api/content/search?cql=space=DEMO&limit=5'",
        ]
    else:
        lines += [
            f"  Personal access token: {DEMO_PAT}",
            f"  Try:       curl -H 'Authorization: Bearer {DEMO_PAT}' "
            f"'{server.api_base}/rest/api/content/search?cql=space=DEMO&limit=5'",
        ]
    return lines


@handle_errors
def emulator(
    port: int = typer.Option(8090, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    flavour: str = typer.Option("cloud", help="cloud (paths under /wiki) or datacenter."),
    pages: int = typer.Option(300, min=0, help="Pages to generate in the sample space."),
    seed: int = typer.Option(1, help="Generator seed: the same seed gives the same space."),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every response."),
    faults: str = typer.Option("", help=FAULTS_HELP),
    timezone: str = typer.Option("UTC", help="The API user's time zone CQL dates are read in."),
) -> None:
    """Run a local Confluence (Cloud or Data Center flavour) with a generated sample space.

    Blocks until Ctrl-C. Prints the site URL and the credentials to use.
    """
    from confluence_rag.emulator import EmulatorConfig, EmulatorServer, parse_fault_spec

    config = EmulatorConfig(
        flavour=flavour,  # type: ignore[arg-type]  # validated by EmulatorConfig
        pages=pages,
        seed=seed,
        latency_ms=latency_ms,
        faults=parse_fault_spec(faults),
        timezone=timezone,
    )
    server = EmulatorServer(config, host=host, port=port, log_level="info").bind()
    for line in emulator_banner(server):
        typer.echo(line)
    typer.echo("Press Ctrl-C to stop.")
    server.serve_forever()
