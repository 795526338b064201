"""Shared pieces of the command line: running async code, the Hub, the acting identity."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import typer
from rich.console import Console

from connectors.context import DEFAULT_ACTOR
from connectors.hub import Hub

__all__ = ["ACTOR_OPTION", "TENANT_OPTION", "console", "err_console", "read_secret", "with_hub"]

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

TENANT_OPTION = typer.Option(..., "--tenant", "-t", help="The tenant id.")
ACTOR_OPTION = typer.Option(
    None,
    "--actor",
    help="Who is acting (audited and checked against roles). Default: $CONNECTOR_ACTOR, "
    "else the service identity.",
)


def actor_or_default(actor: str | None) -> str:
    return actor or os.environ.get("CONNECTOR_ACTOR") or DEFAULT_ACTOR


def with_hub(fn: Callable[[Hub], Awaitable[T]]) -> T:
    """Run ``fn(hub)`` on a fresh event loop with the default Hub started, then close it."""

    async def main() -> T:
        hub = Hub.default()
        await hub.start()
        try:
            return await fn(hub)
        finally:
            await hub.aclose()

    return run(main())


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def read_secret(label: str) -> str:
    """A secret value from a hidden prompt (terminal) or standard input (pipes), never argv.

    One trailing newline is stripped from standard input; an empty value is refused.
    """
    if sys.stdin.isatty():
        value: str = typer.prompt(label, hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
            if value.endswith("\r"):
                value = value[:-1]
    if not value:
        raise typer.BadParameter(f"{label}: an empty value was given")
    return value
