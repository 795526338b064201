"""Versioned migrations of definitions."""

import pytest

from connectors.config.migrations import MigrationError, migrate


def test_schema_1_is_migrated_to_2_with_every_change_recorded():
    old = {
        "type": "echo",
        "schema_version": 1,
        "resilience": {
            "retry": {"attempts": 4, "delay": 0.1, "max_delay": 2},
            "timeout": 1.5,
            "deadline": 60,
        },
    }
    result = migrate(old)
    assert result.data["resilience"] == {
        "retry": {"max_attempts": 4, "base_delay_ms": 100, "max_delay_ms": 2000},
        "timeout_ms": 1500,
        "deadline_ms": 60000,
    }
    assert result.data["schema_version"] == 2
    assert result.migrated
    assert [(".".join(c.old), c.before, c.after) for c in result.changes][-2:] == [
        ("resilience.deadline", 60, 60000),
        ("schema_version", 1, 2),
    ]
    assert old["resilience"]["retry"] == {"attempts": 4, "delay": 0.1, "max_delay": 2}


def test_a_current_or_unversioned_document_is_unchanged():
    doc = {"type": "echo", "resilience": {"timeout_ms": 5}}
    result = migrate(doc)
    assert result.data == doc
    assert not result.migrated
    assert result.changes == []


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schema_version": 3}, "newer than this framework supports"),
        ({"schema_version": 0}, "no migration from schema_version 0"),
        ({"schema_version": "1"}, "must be an integer"),
        ({"schema_version": 1, "resilience": {"timeout": True}}, "number of seconds"),
    ],
)
def test_unmigratable_documents_are_refused_with_a_path(doc, message):
    with pytest.raises(MigrationError, match=message) as info:
        migrate(doc)
    assert info.value.path
