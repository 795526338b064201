"""Workflow templates: bound connectors, typed inputs and steps, as pydantic models.

::

    schema_version: 1
    requires: {salesforce: "^1.0", slack: ">=1.0,<2"}
    connectors:
      crm: {definition: salesforce}
      chat: {definition: slack, settings: {default_channel: "#sales"}}
    inputs:
      since: {type: string, default: "2024-01-01T00:00:00Z"}
    steps:
      - id: leads
        use: crm.query
        with: {soql: "SELECT Id, Email FROM Lead WHERE CreatedDate > {{ inputs.since }}"}
      - id: notify
        use: chat.post_message
        for_each: "{{ steps.leads.output }}"
        when: "{{ item.Email }}"
        with: {channel: "#sales", text: "New lead {{ item.Email }}"}
        on_error: continue

``with``, ``when`` and ``for_each`` are Jinja templates rendered in a sandbox from ``inputs``,
``steps.<id>.output`` (earlier steps only), ``item`` (inside ``for_each``) and ``tenant``.
"""

from __future__ import annotations

import difflib
import re
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connectors.config.semver import RANGE_FORMS, VersionRange

__all__ = ["WORKFLOW_SCHEMA_VERSION", "Binding", "InputSpec", "Step", "Workflow"]

WORKFLOW_SCHEMA_VERSION: Final = 1
_USE: Final = re.compile(r"^[A-Za-z_][\w-]*\.[A-Za-z_]\w*$")
_STEP_REF: Final = re.compile(r"\bsteps\.([A-Za-z_][A-Za-z0-9_]*)")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class InputSpec(_Strict):
    """A typed input. ``secret`` inputs take a ``${...}`` reference resolved for the tenant."""

    type: Literal["string", "integer", "boolean", "list", "secret"] = "string"
    default: object = None
    required: bool | None = Field(None, description="Default: true unless a default is given.")
    description: str = ""

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class Binding(_Strict):
    """A connector the workflow uses: a definition name and setting overrides."""

    definition: str = Field(..., min_length=1, description="Name of a connector definition.")
    settings: dict[str, object] = Field(default_factory=dict)


class Step(_Strict):
    """One step: ``use: <alias>.<operation>`` with rendered arguments."""

    id: str = Field(..., pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    use: str = Field(..., description="<connector alias>.<operation>", examples=["crm.query"])
    with_: dict[str, object] = Field(default_factory=dict, alias="with")
    when: str | None = Field(
        None,
        description="A Jinja condition; the step is skipped if false. With for_each, a "
        "condition that names `item` filters the items instead.",
    )
    for_each: str | None = Field(None, description="A Jinja expression giving a list.")
    on_error: Literal["fail", "continue"] = "fail"
    description: str = ""

    @field_validator("use")
    @classmethod
    def _alias_dot_operation(cls, value: str) -> str:
        if not _USE.match(value):
            raise ValueError(f"use {value!r} must be <connector alias>.<operation>, e.g. crm.query")
        return value

    @property
    def alias(self) -> str:
        return self.use.split(".", 1)[0]

    @property
    def operation(self) -> str:
        return self.use.split(".", 1)[1]


class Workflow(_Strict):
    """A workflow template."""

    schema_version: int = Field(WORKFLOW_SCHEMA_VERSION, ge=1, le=WORKFLOW_SCHEMA_VERSION)
    name: str | None = None
    description: str = ""
    requires: dict[str, str] = Field(
        default_factory=dict, description=f"Adapter → version range ({RANGE_FORMS})."
    )
    connectors: dict[str, Binding] = Field(..., min_length=1)
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[Step] = Field(..., min_length=1)

    @field_validator("requires")
    @classmethod
    def _ranges(cls, value: dict[str, str]) -> dict[str, str]:
        for adapter, text in value.items():
            try:
                VersionRange.parse(text)
            except ValueError as exc:
                raise ValueError(f"{adapter}: {exc}") from None
        return value

    def problems(self) -> list[tuple[tuple[str | int, ...], str, str]]:
        """Consistency problems across steps, as ``(path, message, hint)``: duplicate ids,
        unbound connector aliases, references to steps that have not run yet. The loader
        reports them with line and column; the runner refuses a workflow that has any."""
        found: list[tuple[tuple[str | int, ...], str, str]] = []
        seen: list[str] = []
        for index, step in enumerate(self.steps):
            if step.id in seen:
                found.append(
                    (("steps", index, "id"), f"step id {step.id!r} is used twice", "rename it")
                )
            if step.alias not in self.connectors:
                close = difflib.get_close_matches(step.alias, list(self.connectors), n=1)
                found.append(
                    (
                        ("steps", index, "use"),
                        f"step {step.id!r} uses connector {step.alias!r}, which is not bound "
                        "under `connectors:`",
                        f"did you mean {close[0]!r}?"
                        if close
                        else f"bind it: connectors: {{{step.alias}: {{definition: NAME}}}}",
                    )
                )
            texts = [step.when or "", step.for_each or "", *_texts(step.with_)]
            for ref in sorted({m for text in texts for m in _STEP_REF.findall(text)}):
                if ref not in seen:
                    found.append(
                        (
                            ("steps", index),
                            f"step {step.id!r} refers to steps.{ref}, which is not an earlier step",
                            "a step can use the outputs of the steps above it only",
                        )
                    )
            seen.append(step.id)
        return found


def _texts(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    return []
