"""Roles, permissions and the matrix."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.access.roles import MATRIX, Permission, Role, highest, minimum_role


def test_admins_hold_every_permission():
    assert MATRIX[Role.ADMIN] == frozenset(Permission)


def test_editors_run_operations_and_workflows_and_read_health_and_audit():
    assert MATRIX[Role.EDITOR] == {
        Permission.OPERATION_RUN,
        Permission.WORKFLOW_RUN,
        Permission.HEALTH_READ,
        Permission.AUDIT_READ,
    }


def test_viewers_only_read_health_and_audit():
    assert MATRIX[Role.VIEWER] == {Permission.HEALTH_READ, Permission.AUDIT_READ}


def test_each_role_holds_everything_the_roles_below_it_hold():
    assert MATRIX[Role.VIEWER] < MATRIX[Role.EDITOR] < MATRIX[Role.ADMIN]


def test_roles_are_ordered():
    assert Role.VIEWER < Role.EDITOR < Role.ADMIN
    assert Role.ADMIN >= Role.ADMIN
    assert Role.EDITOR <= Role.ADMIN
    assert highest([Role.VIEWER, Role.ADMIN, Role.EDITOR]) is Role.ADMIN
    assert highest([]) is None


@pytest.mark.parametrize("permission", list(Permission))
def test_minimum_role_is_the_lowest_role_that_holds_the_permission(permission):
    needed = minimum_role(permission)
    assert permission in MATRIX[needed]
    assert all(permission not in MATRIX[r] for r in Role if r < needed)


def test_parsing_names_gives_a_clear_error():
    assert Role.parse(" Editor ") is Role.EDITOR
    assert Permission.parse("audit.read") is Permission.AUDIT_READ
    with pytest.raises(ValueError, match="unknown role 'owner'"):
        Role.parse("owner")
    with pytest.raises(ValueError, match="unknown permission"):
        Permission.parse("everything")


def test_the_matrix_in_the_collaboration_guide_matches_the_code():
    doc = Path(__file__).resolve().parents[2] / "docs" / "COLLABORATION.md"
    text = doc.read_text(encoding="utf-8")
    table = text.split("<!-- matrix:start -->")[1].split("<!-- matrix:end -->")[0]
    rows = [line for line in table.strip().splitlines() if line.startswith("| `")]
    documented: dict[Role, set[Permission]] = {role: set() for role in Role}
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        permission = Permission(re.sub(r"`", "", cells[0]))
        for role, cell in zip((Role.VIEWER, Role.EDITOR, Role.ADMIN), cells[1:], strict=True):
            if cell == "yes":
                documented[role].add(permission)
    assert len(rows) == len(Permission)
    assert documented == {role: set(perms) for role, perms in MATRIX.items()}
