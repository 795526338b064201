"""Template commands: ``validate``, ``schema``, ``check`` and ``run``.

The lead mounts them on the root app with :func:`register`::

    connectors validate templates/connectors/*.yaml     one line per problem; exit 1 if any
    connectors validate --upgrade old.yaml              rewrite files in an older schema
    connectors schema [--output FILE]                   the definition JSON Schema
    connectors check [--tenant T]                       compatibility, before anything runs
    connectors run WORKFLOW --tenant T --input k=v      run a workflow; JSON result on stdout
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn

from connectors.checks import Problem, check_definition
from connectors.config.loader import (
    DefinitionErrors,
    load_definition_file,
    load_directory,
    parse_document,
    read_text,
    upgrade_text,
)
from connectors.config.schema import render_schema
from connectors.context import DEFAULT_ACTOR, CallContext
from connectors.errors import ConnectorError, DefinitionError
from connectors.hub import Hub

__all__ = ["register"]

_out = Console(highlight=False, soft_wrap=True)
_err = Console(stderr=True, highlight=False, soft_wrap=True)


def _files(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml"))
        else:
            found.append(path)
    return found


def _kind(path: Path) -> str:
    data, _ = parse_document(read_text(path), str(path))
    if isinstance(data, dict) and "steps" in data:
        return "workflow"
    if isinstance(data, dict) and "connectors" in data and "type" not in data:
        return "config"
    return "definition"


def _validate_one(path: Path, upgrade: bool) -> list[str]:
    from connectors.config.loader import load_config
    from connectors.workflows.loading import load_workflow

    lines: list[str] = []
    try:
        kind = _kind(path)
        if kind == "workflow":
            load_workflow(path)
        elif kind == "config":
            load_config(path)
        else:
            loaded = load_definition_file(path)
            if loaded.needs_migration:
                if upgrade:
                    path.write_text(upgrade_text(read_text(path), file=str(path)), "utf-8")
                    _err.print(f"{path}: upgraded to the current schema")
                else:
                    _err.print(*loaded.notices)
    except DefinitionErrors as exc:
        lines += [str(p) for p in exc.problems]
    except DefinitionError as exc:
        lines.append(str(exc))
    return lines


def validate(
    paths: list[Path] = typer.Argument(..., help="Definition or workflow files, or directories."),
    upgrade: bool = typer.Option(False, "--upgrade", help="Rewrite files in an older schema."),
) -> None:
    """Check definitions and workflows without connecting: one line per problem."""
    problems: list[str] = []
    files = _files(paths)
    for path in files:
        problems += _validate_one(path, upgrade)
    for line in problems:
        _out.print(line)
    if problems:
        raise typer.Exit(1)
    _err.print(f"{len(files)} file(s) valid")


def schema(
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """Print the JSON Schema of connector definitions."""
    text = render_schema()
    if output is None:
        _out.print(text, end="", markup=False)
    else:
        output.write_text(text, "utf-8")


def _hub(config: Path | None, definitions: Path | None) -> Hub:
    hub = Hub.from_file(config) if config is not None else Hub.default()
    if definitions is not None and definitions.is_dir():
        for name, loaded in load_directory(definitions).items():
            hub.definitions.setdefault(name, loaded.definition)
    return hub


def check(
    tenant: str | None = typer.Option(None, "--tenant", help="Also check this tenant's store."),
    config: Path | None = typer.Option(None, "--config", help="connectors.yaml to use."),
    definitions: Path | None = typer.Option(
        None, "--definitions", help="A directory of definition files to add."
    ),
) -> None:
    """Report compatibility problems (versions, API versions, credentials, scopes, schema)."""

    async def main() -> list[Problem]:
        hub = _hub(config, definitions)
        found: list[Problem] = []
        try:
            if tenant is not None:
                await hub.start()
            for name, definition in sorted(hub.definitions.items()):
                found += await check_definition(hub, name, definition, tenant)
        finally:
            await hub.aclose()
        return found

    try:
        problems = asyncio.run(main())
    except ConnectorError as exc:
        _out.print(str(exc))
        raise typer.Exit(2) from None
    for problem in problems:
        _out.print(f"{problem.severity}: {problem}")
    if any(p.severity == "error" for p in problems):
        raise typer.Exit(1)


def run(
    workflow: Path = typer.Argument(..., help="The workflow file."),
    tenant: str = typer.Option(..., "--tenant", help="Tenant to run for."),
    actor: str = typer.Option(DEFAULT_ACTOR, "--actor", help="Who runs it (audit, access)."),
    inputs: list[str] = typer.Option([], "--input", "-i", help="key=value, repeatable."),
    config: Path | None = typer.Option(None, "--config", help="connectors.yaml to use."),
    definitions: Path | None = typer.Option(
        Path("templates/connectors"), "--definitions", help="Definition files to add."
    ),
) -> None:
    """Run a workflow with a progress display; the JSON result goes to stdout."""
    from connectors.workflows.loading import load_workflow
    from connectors.workflows.runner import WorkflowRunner

    given: dict[str, object] = {}
    for item in inputs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _err.print(f"--input {item!r}: write key=value")
            raise typer.Exit(2)
        given[key] = value

    async def main() -> str:
        hub = _hub(config, definitions)
        spec = load_workflow(workflow)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=_err) as bar:
            tasks: dict[str, TaskID] = {}

            def on_step(step: object, result: object) -> None:
                from connectors.workflows.models import Step
                from connectors.workflows.runner import StepResult

                assert isinstance(step, Step)
                if result is None:
                    tasks[step.id] = bar.add_task(f"{step.id}: {step.use}", total=1)
                    return
                assert isinstance(result, StepResult)
                bar.update(tasks[step.id], completed=1, description=f"{step.id}: {result.status}")

            try:
                result = await WorkflowRunner(hub, on_step=on_step).run(
                    spec, CallContext(tenant=tenant, actor=actor), given
                )
            finally:
                await hub.aclose()
        if result.status != "succeeded":
            raise _Failed(result.dumps())
        return result.dumps()

    try:
        text = asyncio.run(main())
    except _Failed as failed:
        _out.print(str(failed), markup=False)
        raise typer.Exit(1) from None
    except ConnectorError as exc:
        _out.print(json.dumps({"status": "error", "error": exc.code, "message": str(exc)}))
        raise typer.Exit(2) from None
    _out.print(text, markup=False)


class _Failed(Exception):
    """A run that finished with a failed step (its JSON result is the message)."""


def register(app: typer.Typer) -> None:
    """Add ``validate``, ``schema``, ``check`` and ``run`` to ``app``."""
    app.command("validate")(validate)
    app.command("schema")(schema)
    app.command("check")(check)
    app.command("run")(run)
