"""The ``connectors`` command line (Typer + Rich). Each command family lives in its own module."""

from connectors.cli.app import app, main

__all__ = ["app", "main"]
