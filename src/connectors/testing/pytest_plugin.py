"""The ``connectors`` pytest plugin (registered through the ``pytest11`` entry point).

Fixtures for users' own tests:

- ``connectors_hub``: a :class:`~connectors.hub.Hub` on built-in defaults with in-memory state,
  isolated from the environment, for one test.
- ``connectors_logs``: structlog events captured (after redaction) during the test.

More fixtures (the emulators, fault injection, audit capture) are added by the emulator modules.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.testing.capture import capture_logs

__all__ = ["connectors_hub", "connectors_logs"]


@pytest.fixture
def connectors_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """A Hub isolated from ``CONNECTOR_*`` variables, with its data under a temporary folder."""
    data_dir = tmp_path_factory.mktemp("connectors-data")
    hub = Hub(Settings.load({}, data_dir=data_dir))
    yield hub


@pytest.fixture
def connectors_logs() -> Iterator[list[dict[str, object]]]:
    """Structlog events emitted during the test, as dicts, after redaction."""
    with capture_logs() as events:
        yield events
