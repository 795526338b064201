"""The chaos suite's switch: ``CHAOS_LONG=1`` runs every scenario ten times longer.

The default (short) form runs in ``make test``; the long form is for a release check::

    CHAOS_LONG=1 .venv/bin/pytest tests/chaos -q
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def chaos_scale() -> int:
    """How many times the short scenario's traffic to send (1, or 10 with ``CHAOS_LONG=1``)."""
    return 10 if os.environ.get("CHAOS_LONG", "") not in ("", "0") else 1
