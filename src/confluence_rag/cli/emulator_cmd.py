"""`confluence-rag emulator` and `confluence-rag demo`."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import typer

from confluence_rag.cli.errors import handle_errors

if TYPE_CHECKING:
    from confluence_rag.emulator import EmulatorConfig, EmulatorServer

FAULTS_HELP = (
    "Fault spec: comma-separated KIND[:VALUE][@PROB][;OPTION...]. KIND is 429, 503, 500, 504, "
    "drop, ratelimit403 or latency. VALUE is a probability (latency: milliseconds, with @PROB). "
    "A bare 504 fires when limit x body expand exceeds the budget. OPTIONS: path~TEXT, times=N, "
    "after=N, retry-after=N|date, budget=N. Example: "
    "'429:0.1,503:0.05,500:0.05,504,drop:0.02,ratelimit403:0.05,latency:2000@0.01'."
)


def register(app: typer.Typer) -> None:
    app.command("emulator")(emulator)


GENERATED_HELP = (
    "Serve a generated space of N pages (filler text, for scale tests) instead of the sample "
    "site (0)."
)


def emulator_config(generated: int, **options: Any) -> EmulatorConfig:
    """The sample site (an invented company's Engineering and Operations spaces), or with
    ``generated`` > 0 a generated space of that many pages."""
    from confluence_rag.emulator import EmulatorConfig
    from confluence_rag.emulator.loader import site_config

    if generated:
        return EmulatorConfig(pages=generated, **options)
    return site_config(**options)


def emulator_banner(server: EmulatorServer) -> list[str]:
    """What a person needs to use a running emulator: URL, credentials, a first request."""
    from confluence_rag.emulator import DEMO_API_TOKEN, DEMO_EMAIL, DEMO_PAT

    config = server.config
    what = "the sample site" if config.site_dir else f"a generated site (seed {config.seed})"
    sizes = Counter(content.space_key for content in server.state.contents.values())
    spaces = ", ".join(
        f"{key} {space.name!r} ({sizes[key]} pages and blog posts)"
        for key, space in server.state.spaces.items()
    )
    first = f"{server.api_base}/rest/api/content/search?cql=space={config.space_key}&limit=5"
    lines = [
        f"Confluence emulator ({config.flavour}), {what}: {spaces}",
        f"  Site URL:  {server.site_url}",
        f"  API base:  {server.api_base}",
    ]
    if config.flavour == "cloud":
        lines += [
            f"  Email:     {DEMO_EMAIL}",
            f"  API token: {DEMO_API_TOKEN}",
            f"  Try:       curl -u {DEMO_EMAIL}:{DEMO_API_TOKEN} '{first}'",
        ]
    else:
        lines += [
            f"  Personal access token: {DEMO_PAT}",
            f"  Try:       curl -H 'Authorization: Bearer {DEMO_PAT}' '{first}'",
        ]
    return lines


@handle_errors
def emulator(
    port: int = typer.Option(8090, help="Port to listen on (0: any free port)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    flavour: str = typer.Option("cloud", help="cloud (paths under /wiki) or datacenter."),
    generated: int = typer.Option(0, min=0, max=200_000, metavar="N", help=GENERATED_HELP),
    seed: int = typer.Option(1, help="Seed of the generated space: the same seed, the same space."),
    latency_ms: float = typer.Option(0.0, min=0, help="Latency added to every response."),
    faults: str = typer.Option("", help=FAULTS_HELP),
    timezone: str = typer.Option("UTC", help="The API user's time zone CQL dates are read in."),
) -> None:
    """Run a local Confluence (Cloud or Data Center flavour) serving the sample site.

    Blocks until Ctrl-C. Prints the site URL and the credentials to use.
    """
    from confluence_rag.emulator import EmulatorServer, parse_fault_spec

    config = emulator_config(
        generated,
        flavour=flavour,
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
