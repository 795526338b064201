"""The workflow runner: bound connectors opened through the Hub, steps run and audited in order.

::

    run(workflow, ctx, inputs)
        check: consistency, ``requires`` (adapter version ranges), inputs (types, secrets)
        open every bound connector: hub.open(definition, tenant=ctx.tenant, actor=ctx.actor)
        check every step's operation exists — all before the first step runs
        for each step:  when? ─ no ─▶ skipped        (a ``when`` naming ``item`` filters items)
                        for_each? ─▶ one call per item (``item`` in scope), outputs collected
                        call alias.operation(**rendered with)    (the normal @operation path:
                                                                 access, scopes, audit, metrics)
                        audit ``workflow.step``; on_error: fail stops, continue goes on

Every call goes through the connector's own ``@operation`` path, so it is authorised for the
actor and audited like any other call; the runner adds one ``workflow.step`` audit event per step.
The result is JSON-able: per step its status, an output summary (secrets masked, long values cut)
and the error code. Secrets never appear in rendered text (see :mod:`.rendering`).
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import json
import re
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Final, Literal

from pydantic import BaseModel

from connectors.audit.events import AuditEvent, Outcome
from connectors.base import Connector
from connectors.config.semver import Version, VersionRange
from connectors.context import CallContext, use_context
from connectors.errors import (
    ConfigurationError,
    ConnectorError,
    DefinitionError,
    IncompatibleVersion,
    InvalidRequest,
)
from connectors.hub import Hub
from connectors.observability.logging import get_logger
from connectors.observability.redaction import redact_text
from connectors.secrets import MASK, Secret
from connectors.secrets.refs import find_refs
from connectors.workflows.models import InputSpec, Step, Workflow
from connectors.workflows.rendering import evaluate, render

__all__ = ["StepResult", "StepStatus", "WorkflowResult", "WorkflowRunner", "summarise"]

StepStatus = Literal["succeeded", "failed", "skipped", "not_run"]
_log = get_logger("connectors.workflow")
_MAX_TEXT: Final = 200
_MAX_ITEMS: Final = 20


_ITEM: Final = re.compile(r"\bitem\b")


def _mentions_item(condition: str | None) -> bool:
    """Whether a ``when:`` refers to ``item``: then, with ``for_each``, it filters each item
    (the step runs for the items where it holds); otherwise it decides for the whole step."""
    return condition is not None and _ITEM.search(condition) is not None


def _split_positional(
    signature: inspect.Signature, arguments: Mapping[str, object]
) -> tuple[list[object], dict[str, object]]:
    """``with:`` keys as call arguments: keys naming positional-only parameters (``soql`` in
    ``query(soql, /, **params)``) are passed by position, in order; the rest by keyword."""
    args: list[object] = []
    kwargs = dict(arguments)
    for parameter in signature.parameters.values():
        if parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            break
        if parameter.name not in kwargs:
            break
        args.append(kwargs.pop(parameter.name))
    return args, kwargs


def summarise(value: object, depth: int = 0) -> object:
    """A small JSON-able picture of ``value``: secrets masked, long text and lists cut."""
    if isinstance(value, Secret):
        return MASK
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        text = redact_text(value)
        return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"
    if depth >= 4:
        return "…"
    if isinstance(value, BaseModel):
        return summarise(value.model_dump(), depth)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return summarise({f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, depth)
    if isinstance(value, Mapping):
        items = list(value.items())
        out = {str(k): summarise(v, depth + 1) for k, v in items[:_MAX_ITEMS]}
        if len(items) > _MAX_ITEMS:
            out["…"] = f"{len(items) - _MAX_ITEMS} more"
        return out
    if isinstance(value, list | tuple | set | frozenset):
        seq = list(value)
        head = [summarise(v, depth + 1) for v in seq[:_MAX_ITEMS]]
        return head + ([f"… {len(seq) - _MAX_ITEMS} more"] if len(seq) > _MAX_ITEMS else [])
    return summarise(str(value), depth)


@dataclass(slots=True)
class StepResult:
    """What happened to one step."""

    id: str
    use: str
    status: StepStatus
    output: object = None
    error_code: str | None = None
    error: str | None = None
    duration_ms: float = 0.0
    items: int | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"id": self.id, "use": self.use, "status": self.status}
        if self.status == "succeeded":
            data["output"] = summarise(self.output)
        if self.items is not None:
            data["items"] = self.items
        if self.error_code is not None:
            data["error_code"] = self.error_code
            data["error"] = self.error
        data["duration_ms"] = round(self.duration_ms, 3)
        return data


@dataclass(slots=True)
class WorkflowResult:
    """The outcome of a run: ``status`` is ``succeeded`` unless a failing step stopped it or
    any step failed."""

    workflow: str
    tenant: str
    actor: str
    request_id: str
    status: Literal["succeeded", "failed"] = "succeeded"
    steps: list[StepResult] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {
            "workflow": self.workflow,
            "tenant": self.tenant,
            "actor": self.actor,
            "request_id": self.request_id,
            "status": self.status,
            "steps": [s.to_json() for s in self.steps],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=False, default=str)


StepListener = Callable[[Step, StepResult | None], None]
"""Told when a step starts (``None``) and when it ends (its result): the CLI's progress bar."""


class WorkflowRunner:
    """Runs workflows for one Hub. ``on_step`` observes progress."""

    def __init__(self, hub: Hub, *, on_step: StepListener | None = None) -> None:
        self.hub = hub
        self.on_step = on_step

    async def run(
        self, workflow: Workflow, ctx: CallContext, inputs: Mapping[str, object] | None = None
    ) -> WorkflowResult:
        """Run ``workflow`` for ``ctx.tenant`` as ``ctx.actor``.

        Raises (before any step runs) :class:`~connectors.errors.DefinitionError` for an
        inconsistent workflow or bad inputs and :class:`~connectors.errors.IncompatibleVersion`
        for an adapter outside ``requires``; step failures are reported in the result.
        """
        name = workflow.name or "workflow"
        problems = workflow.problems()
        if problems:
            raise DefinitionError(f"workflow {name!r}: {problems[0][1]}", hint=problems[0][2])
        self._check_requires(workflow)
        values = await self._inputs(workflow, ctx, dict(inputs or {}))
        result = WorkflowResult(name, ctx.tenant, ctx.actor, ctx.request_id)
        await self.hub.start()
        async with AsyncExitStack() as stack:
            connectors: dict[str, Connector] = {}
            for alias, binding in workflow.connectors.items():
                connectors[alias] = await stack.enter_async_context(
                    self.hub.open(
                        binding.definition,
                        tenant_id=ctx.tenant,
                        actor=ctx.actor,
                        settings=binding.settings or None,
                    )
                )
            self._check_operations(workflow, connectors)
            outputs: dict[str, dict[str, object]] = {}
            stopped = False
            with use_context(ctx):
                for step in workflow.steps:
                    if stopped:
                        result.steps.append(StepResult(step.id, step.use, "not_run"))
                        continue
                    scope = {"inputs": values, "steps": outputs, "tenant": ctx.tenant}
                    step_result = await self._step(name, step, connectors, scope, ctx)
                    result.steps.append(step_result)
                    outputs[step.id] = {
                        "output": step_result.output,
                        "status": step_result.status,
                        "error_code": step_result.error_code,
                    }
                    if step_result.status == "failed":
                        result.status = "failed"
                        stopped = step.on_error == "fail"
        return result

    # --- checks ---------------------------------------------------------------------------------

    def _check_requires(self, workflow: Workflow) -> None:
        for adapter, text in workflow.requires.items():
            version = self.hub.registry.get(adapter).version
            if not VersionRange.parse(text).contains(Version.parse(version)):
                raise IncompatibleVersion(
                    f"workflow {workflow.name!r} requires {adapter} {text}, "
                    f"but the installed adapter is {version}",
                    connector=adapter,
                    hint=f"install a {adapter} adapter matching {text} or update `requires:`",
                )

    async def _inputs(
        self, workflow: Workflow, ctx: CallContext, given: dict[str, object]
    ) -> dict[str, object]:
        unknown = sorted(set(given) - set(workflow.inputs))
        if unknown:
            close = difflib.get_close_matches(unknown[0], list(workflow.inputs), n=1)
            raise DefinitionError(
                f"workflow {workflow.name!r} has no input {unknown[0]!r}",
                hint=f"did you mean {close[0]!r}?"
                if close
                else f"inputs: {', '.join(workflow.inputs) or '(none)'}",
            )
        values: dict[str, object] = {}
        for key, spec in workflow.inputs.items():
            raw = given.get(key, spec.default)
            if raw is None:
                if spec.is_required:
                    raise DefinitionError(
                        f"workflow {workflow.name!r} needs the input {key!r}",
                        hint=f"pass --input {key}=VALUE",
                    )
                values[key] = None
                continue
            values[key] = await self._coerce(key, spec, raw, ctx)
        return values

    async def _coerce(self, key: str, spec: InputSpec, raw: object, ctx: CallContext) -> object:
        kind = spec.type
        if kind == "secret":
            if isinstance(raw, Secret):
                return raw
            matches = find_refs(raw) if isinstance(raw, str) else []
            if len(matches) != 1 or matches[0].start != 0 or matches[0].end != len(str(raw)):
                raise DefinitionError(
                    f"input {key!r} is a secret: give a ${{...}} reference, not a value",
                    hint=f"--input {key}='${{secret:NAME}}'",
                )
            resolved = await self.hub.services.resolvers.resolve(matches[0].ref, tenant=ctx.tenant)
            return resolved
        if kind == "integer":
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.strip().lstrip("-").isdigit():
                return int(raw)
        elif kind == "boolean":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
                return raw.lower() in ("true", "1", "yes")
        elif kind == "list":
            if isinstance(raw, list):
                return raw
            if isinstance(raw, str):
                return [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, str | int | float) and not isinstance(raw, bool):
            return str(raw)
        raise DefinitionError(
            f"input {key!r} must be {kind}, got {type(raw).__name__}",
            hint=f"pass --input {key}=<{kind}>",
        )

    def _check_operations(self, workflow: Workflow, connectors: Mapping[str, Connector]) -> None:
        for step in workflow.steps:
            ops = type(connectors[step.alias]).operations()
            if step.operation not in ops:
                close = difflib.get_close_matches(step.operation, list(ops), n=1)
                raise DefinitionError(
                    f"step {step.id!r}: {step.alias} ({connectors[step.alias].instance_name}) "
                    f"has no operation {step.operation!r}",
                    hint=f"did you mean {close[0]!r}?"
                    if close
                    else f"operations: {', '.join(sorted(ops))}",
                )

    # --- steps ----------------------------------------------------------------------------------

    async def _step(
        self,
        workflow: str,
        step: Step,
        connectors: Mapping[str, Connector],
        scope: dict[str, object],
        ctx: CallContext,
    ) -> StepResult:
        clock = self.hub.clock
        started = clock.monotonic()
        if self.on_step is not None:
            self.on_step(step, None)
        result = StepResult(step.id, step.use, "succeeded")
        per_item = step.for_each is not None and _mentions_item(step.when)
        try:
            if step.when is not None and not per_item and not evaluate(step.when, scope):
                result.status = "skipped"
            elif step.for_each is not None:
                items = render(step.for_each, scope)
                if not isinstance(items, list | tuple):
                    raise InvalidRequest(
                        f"step {step.id!r}: for_each gave {type(items).__name__}, not a list",
                        hint="for_each must render to a list, e.g. '{{ steps.x.output }}'",
                    )
                outputs = []
                for item in items:
                    item_scope = {**scope, "item": item}
                    if per_item and step.when is not None and not evaluate(step.when, item_scope):
                        continue
                    outputs.append(await self._call(step, connectors, item_scope))
                result.output, result.items = outputs, len(outputs)
            else:
                result.output = await self._call(step, connectors, scope)
        except ConnectorError as exc:
            result.status = "failed"
            result.error_code = exc.code
            result.error = redact_text(str(exc))[:500]
        result.duration_ms = (clock.monotonic() - started) * 1000
        self._audit(workflow, step, result, ctx)
        if self.on_step is not None:
            self.on_step(step, result)
        return result

    async def _call(
        self, step: Step, connectors: Mapping[str, Connector], scope: Mapping[str, object]
    ) -> object:
        arguments = render(step.with_, scope)
        assert isinstance(arguments, dict)
        method = getattr(connectors[step.alias], step.operation)
        args, kwargs = _split_positional(inspect.signature(method), arguments)
        try:
            inspect.signature(method).bind(*args, **kwargs)
        except TypeError as exc:
            raise InvalidRequest(
                f"step {step.id!r}: the arguments do not fit {step.use}: {exc}",
                hint="check the step's `with:` keys against the operation's parameters",
            ) from None
        returned = method(*args, **kwargs)
        if inspect.isawaitable(returned):
            return await returned
        if hasattr(returned, "__aiter__"):
            return [item async for item in returned]
        raise ConfigurationError(  # pragma: no cover - every @operation is one of the two
            f"{step.use} is not an operation", hint="use a declared operation"
        )

    def _audit(self, workflow: str, step: Step, result: StepResult, ctx: CallContext) -> None:
        outcome: Outcome = "failure" if result.status == "failed" else "success"
        details: dict[str, object] = {
            "workflow": workflow,
            "step": step.id,
            "status": result.status,
        }
        if result.items is not None:
            details["items"] = result.items
        self.hub.services.audit.record(
            AuditEvent.new(
                clock=self.hub.clock,
                kind="workflow.step",
                tenant=ctx.tenant,
                actor=ctx.actor,
                operation=step.use,
                target=f"{workflow}/{step.id}",
                outcome=outcome,
                error_code=result.error_code,
                duration_ms=round(result.duration_ms, 3),
                request_id=ctx.request_id,
                details=details,
            )
        )
        log = _log.warning if result.status == "failed" else _log.info
        log(
            "workflow.step",
            workflow=workflow,
            step=step.id,
            use=step.use,
            status=result.status,
            error=result.error_code,
            tenant=ctx.tenant,
            actor=ctx.actor,
            request_id=ctx.request_id,
        )
