"""Definition models: pins, auth merged into settings, declarative API checks."""

import pytest
from pydantic import ValidationError

from connectors.config.definition import ConnectorDefinition, HttpOperation


def test_a_pinned_type_splits_into_adapter_and_range():
    d = ConnectorDefinition.model_validate({"type": "salesforce@^1.2"})
    assert d.type == "salesforce"
    assert d.adapter_version == "^1.2"
    assert d.adapter_range is not None
    assert d.adapter_range.contains("1.9.0")


def test_auth_and_api_are_part_of_the_settings_the_adapter_sees():
    d = ConnectorDefinition.model_validate(
        {
            "type": "http",
            "auth": {"kind": "bearer", "token": "${secret:t}"},
            "settings": {"base_url": "https://x.test"},
            "api": {"operations": {"ping": {"path": "/ping"}}},
        }
    )
    assert d.settings["auth"] == {"kind": "bearer", "token": "${secret:t}", "scheme": "Bearer"}
    assert d.settings["api"]["operations"]["ping"]["path"] == "/ping"
    assert d.declared_settings == {"base_url": "https://x.test"}
    assert d.model_dump(by_alias=True)["settings"] == {"base_url": "https://x.test"}


def test_existing_callers_still_build_definitions_by_name():
    assert ConnectorDefinition(type="echo").settings == {}


def test_secret_fields_of_auth_must_be_references():
    with pytest.raises(ValidationError, match="reference"):
        ConnectorDefinition.model_validate(
            {"type": "x", "auth": {"kind": "api_key", "key": "literal-key"}}
        )


def test_operations_default_idempotency_from_the_method():
    assert HttpOperation(path="/x").is_idempotent
    assert not HttpOperation(path="/x", method="POST").is_idempotent
    assert HttpOperation(path="/x", method="POST", idempotent=True).is_idempotent


def test_path_parameters_must_be_declared_and_required():
    with pytest.raises(ValidationError, match="must be required"):
        HttpOperation.model_validate(
            {"path": "/x/{id}", "params": {"id": {"type": "string", "required": False}}}
        )
