"""The published JSON Schema matches the models."""

from pathlib import Path

from connectors.config.schema import definition_schema, render_schema

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "schema"


def test_the_published_schema_is_up_to_date():
    published = (PUBLISHED / "connector-definition.schema.json").read_text("utf-8")
    assert published == render_schema(), "run `connectors schema -o docs/schema/...` to refresh"


def test_the_schema_describes_fields_with_examples():
    schema = definition_schema()
    props = schema["properties"]
    assert "settings" in props
    assert "declared_settings" not in props
    assert props["type"]["examples"] == ["salesforce", "salesforce@^1.2", "http"]
    assert "description" in props["schema_version"]
    assert schema["$schema"].endswith("2020-12/schema")
