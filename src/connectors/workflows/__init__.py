"""Workflow templates: connector bindings, typed inputs, sandboxed steps and the runner.

See ``docs/workflows.md``.
"""

from connectors.workflows.loading import load_workflow, parse_workflow
from connectors.workflows.models import Binding, InputSpec, Step, Workflow
from connectors.workflows.rendering import TemplateError
from connectors.workflows.runner import StepResult, WorkflowResult, WorkflowRunner

__all__ = [
    "Binding",
    "InputSpec",
    "Step",
    "StepResult",
    "TemplateError",
    "Workflow",
    "WorkflowResult",
    "WorkflowRunner",
    "load_workflow",
    "parse_workflow",
]
