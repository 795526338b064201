"""The JSON Schema of connector definitions, generated from the pydantic models.

Editors validate ``templates/connectors/*.yaml`` against it (YAML language servers read a
``# yaml-language-server: $schema=...`` comment); ``connectors schema`` prints it, and the copy
published in ``docs/schema/connector-definition.schema.json`` is checked by a test to match the
models, so the schema and the code cannot drift apart.
"""

from __future__ import annotations

import json
from typing import Final

from connectors.config.definition import SCHEMA_VERSION, ConnectorDefinition

__all__ = ["SCHEMA_ID", "definition_schema", "render_schema"]

#: The schema's ``$id`` (a stable name; nothing is fetched from it).
SCHEMA_ID: Final = "https://connectors.dev/schema/connector-definition.schema.json"


def definition_schema() -> dict[str, object]:
    """The JSON Schema (draft 2020-12) of a connector definition document."""
    schema = ConnectorDefinition.model_json_schema(by_alias=True, mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Connector definition",
        "description": (
            f"A tenant-agnostic connector definition, schema_version {SCHEMA_VERSION}. "
            "Values may hold ${...} references (env, file, secret, vault, aws-sm, tenant.id), "
            "resolved per tenant at connect time."
        ),
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def render_schema() -> str:
    """The schema as stable, pretty-printed JSON text (what is published under ``docs/``)."""
    return json.dumps(definition_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
