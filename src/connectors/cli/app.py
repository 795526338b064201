"""The root ``connectors`` command and the small commands that need no family of their own."""

from __future__ import annotations

import json
import sys

import typer
from rich.console import Console
from rich.table import Table

from connectors import __version__
from connectors.config.settings import Settings
from connectors.errors import ConnectorError
from connectors.registry import AdapterRegistry

__all__ = ["app", "main"]

app = typer.Typer(
    name="connectors",
    help="Connector Framework: connectors, credentials, audit, emulators and the server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()
err_console = Console(stderr=True)


@app.command("version")
def version() -> None:
    """Print the framework's version."""
    console.print(__version__)


@app.command("list")
def list_adapters(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List the available adapters: built-in and installed through entry points."""
    registry = AdapterRegistry()
    infos = registry.info()
    if as_json:
        console.print_json(
            json.dumps(
                [
                    {
                        "name": i.name,
                        "version": i.version,
                        "source": i.source,
                        "target": i.target,
                        "description": i.description,
                    }
                    for i in infos
                ]
            )
        )
        return
    table = Table(title="Adapters", show_lines=False)
    table.add_column("name", style="bold")
    table.add_column("version")
    table.add_column("source")
    table.add_column("description")
    for info in infos:
        table.add_row(info.name, info.version or "-", info.source, info.description)
    if not infos:
        console.print("No adapters are installed.")
        return
    console.print(table)


@app.command("settings")
def show_settings() -> None:
    """Show the effective settings (from CONNECTOR_* variables and defaults); secrets masked."""
    settings = Settings.load()
    table = Table(title="Settings")
    table.add_column("setting", style="bold")
    table.add_column("value")
    for name, value in settings.model_dump().items():
        table.add_row(name, str(value))
    console.print(table)
    for name, suggestion in Settings.unknown_variables().items():
        hint = f" (did you mean {suggestion}?)" if suggestion else ""
        err_console.print(f"[yellow]warning:[/] unknown variable {name}{hint}")


def _mount() -> None:
    """Attach the command families (each in its own module)."""
    from connectors.cli import (
        access,
        audit,
        credentials,
        rotate,
        server,
        templates,
        tokens,
        webhooks,
        worker,
    )

    rotate.register_credentials(credentials.app)
    app.add_typer(credentials.app, name="credentials")
    app.add_typer(tokens.app, name="tokens")
    app.add_typer(audit.app, name="audit")
    app.add_typer(access.app, name="access")
    app.add_typer(access.teams_app, name="teams")
    app.add_typer(webhooks.webhooks_app, name="webhooks")
    # Families adding several root commands expose ``register(app)``.
    templates.register(app)
    server.register(app)
    worker.register(app)


def main() -> None:
    """Entry point: typed framework errors become one clear line and exit status 2."""
    try:
        app()
    except ConnectorError as exc:
        err_console.print(f"[red]error:[/] {exc}")
        sys.exit(2)


_mount()
