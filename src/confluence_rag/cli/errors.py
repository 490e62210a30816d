"""Turning ConfluenceRagError into a CLI message and exit code, in one place."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console

from confluence_rag.errors import ConfluenceRagError, InvalidInput

P = ParamSpec("P")
R = TypeVar("R")

# Exit codes: 1 = the operation failed, 2 = bad usage or input (as Click uses for usage errors).
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2

_stderr = Console(stderr=True)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorate a command so our errors print as one readable line with a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ConfluenceRagError as error:
            _stderr.print(f"[bold red]Error:[/] {error.message}", highlight=False)
            code = EXIT_BAD_INPUT if isinstance(error, InvalidInput) else EXIT_FAILURE
            raise typer.Exit(code) from None

    return wrapper
