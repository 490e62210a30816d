"""What every CLI command shares: settings from the environment, running a coroutine with a
clean Ctrl-C, and finding a source from what a person typed.

Commands are synchronous Typer functions; each builds ``Settings`` once and runs one coroutine
that opens the services, so nothing is built at import time. Command modules import the services
(and through them the store, the embedder, httpx, ...), uvicorn, the HTTP app, MCP and the
emulator inside the commands that use them: ``confluence-rag --help`` then starts in well under a
second instead of loading all of them (tests/cli checks that it does not).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console

from confluence_rag.errors import ConfigurationError, InvalidInput, SourceNotFound
from confluence_rag.records import SourceRecord
from confluence_rag.settings import Settings

if TYPE_CHECKING:
    from confluence_rag.services import Services

T = TypeVar("T")

# Exit status of a command stopped with Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130

console = Console()
err_console = Console(stderr=True)


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment (and ``.env``); a bad value names its variable."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"CONFLUENCE_RAG_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in error.errors()
        )
        raise ConfigurationError(f"invalid configuration: {problems}") from None


class Interrupted(Exception):
    """Ctrl-C reached a command that handled it (cleanup done); exit with EXIT_INTERRUPTED."""


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` to completion. A first Ctrl-C cancels it (asyncio delivers it as a
    CancelledError inside, so cleanup can run); the command then exits with status 130."""
    try:
        return asyncio.run(main())
    except (KeyboardInterrupt, Interrupted):
        err_console.print("[yellow]Interrupted.[/]", highlight=False)
        raise typer.Exit(EXIT_INTERRUPTED) from None


async def on_interrupt(work: Awaitable[T], cleanup: Callable[[], Awaitable[None]]) -> T:
    """Await ``work``; if Ctrl-C cancels it, run ``cleanup`` and raise ``Interrupted``.

    asyncio.run turns the first Ctrl-C into a cancel of the main task; we absorb it (uncancel)
    so the cleanup's own timeouts behave normally, then report the interruption.
    """
    try:
        return await work
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is None or task.cancelling() == 0:
            raise
        task.uncancel()
        await cleanup()
        raise Interrupted() from None


async def resolve_source(services: Services, name: str) -> SourceRecord:
    """A source by its id, or by a space key / unique part of the id when that is unambiguous."""
    try:
        return await services.sources.get(name)
    except SourceNotFound:
        pass
    sources = await services.sources.list()
    wanted = name.strip().lower()
    matches = [
        source
        for source in sources
        if wanted in (key.lower() for key in source.space_keys) or wanted in source.id.lower()
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        known = ", ".join(source.id for source in sources) or "none yet (use `confluence-rag add`)"
        raise SourceNotFound(f"no source matches {name!r}; sources: {known}")
    ids = ", ".join(source.id for source in matches)
    raise InvalidInput(f"{name!r} matches several sources ({ids}); give the full id")
