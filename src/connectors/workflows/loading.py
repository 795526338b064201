"""Load workflow templates with the same ``file:line:col`` errors as connector definitions."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path as FsPath

from connectors.config.loader import check_references, parse_document, read_text
from connectors.config.source import Path, SourceMap
from connectors.config.validation import DefinitionErrors, validate_model
from connectors.errors import DefinitionError
from connectors.workflows.models import Workflow
from connectors.workflows.rendering import check_template

__all__ = ["load_workflow", "parse_workflow"]


def _template_problems(data: object, smap: SourceMap) -> list[DefinitionError]:
    problems: list[DefinitionError] = []

    def walk(value: object, path: Path) -> None:
        if isinstance(value, str):
            error = check_template(value)
            if error is not None:
                problems.append(
                    smap.error(
                        path,
                        error,
                        "check the {{ ... }} and {% ... %} delimiters and the expression",
                    )
                )
        elif isinstance(value, Mapping):
            for key, item in value.items():
                walk(item, (*path, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))

    steps = data.get("steps") if isinstance(data, Mapping) else None
    if isinstance(steps, list):
        walk(steps, ("steps",))
    return problems


def parse_workflow(text: str, *, file: str = "<string>") -> Workflow:
    """Parse and validate a workflow; every problem names ``file:line:col`` with a hint."""
    data, smap = parse_document(text, file)
    if not isinstance(data, Mapping):
        raise smap.error(
            (), "a workflow must be a mapping", "start with `connectors:` and `steps:`"
        )
    problems = check_references(data, smap) + _template_problems(data, smap)
    try:
        workflow = validate_model(Workflow, data, smap)
    except DefinitionErrors as exc:
        problems.extend(exc.problems)
    else:
        problems.extend(smap.error(path, msg, hint) for path, msg, hint in workflow.problems())
        if not problems:
            return (
                workflow
                if workflow.name
                else workflow.model_copy(update={"name": FsPath(file).stem})
            )
    raise DefinitionErrors(problems)


def load_workflow(path: str | os.PathLike[str]) -> Workflow:
    """Load a workflow file (its ``name`` defaults to the file's stem)."""
    return parse_workflow(read_text(path), file=str(path))
