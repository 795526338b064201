"""Connector definitions that point the built-in adapters at running emulators.

::

    hub.definitions.update(emulator_definitions(salesforce=sf_handle, slack=slack_handle))

The credentials are the emulators' own test fixtures (the Salesforce emulator's default
connected app, a freshly minted Slack bot token), given as :class:`~connectors.secrets.Secret`
values, so no credential store or master key is needed in tests.
"""

from __future__ import annotations

from typing import Protocol

from connectors.config.definition import ConnectorDefinition
from connectors.secrets import Secret
from connectors.testing.salesforce import SalesforceEmulator
from connectors.testing.salesforce.config import DEFAULT_APP
from connectors.testing.slack.emulator import SlackEmulator

__all__ = ["emulator_definitions"]


class _Handle(Protocol):
    @property
    def base_url(self) -> str: ...

    @property
    def emulator(self) -> SalesforceEmulator | SlackEmulator: ...


def emulator_definitions(
    *, salesforce: _Handle | None = None, slack: _Handle | None = None
) -> dict[str, ConnectorDefinition]:
    """Definitions named ``salesforce`` and ``slack`` for the given emulator handles."""
    found: dict[str, ConnectorDefinition] = {}
    if salesforce is not None:
        found["salesforce"] = ConnectorDefinition.model_validate(
            {
                "type": "salesforce",
                "settings": {
                    "auth": "client_credentials",
                    "client_id": DEFAULT_APP.consumer_key,
                    "client_secret": Secret(DEFAULT_APP.consumer_secret, name="client_secret"),
                    "login_url": salesforce.base_url,
                },
            }
        )
    if slack is not None:
        emulator = slack.emulator
        if not isinstance(emulator, SlackEmulator):
            raise TypeError("slack= needs a Slack emulator handle")
        token = emulator.issue_token()
        found["slack"] = ConnectorDefinition.model_validate(
            {
                "type": "slack",
                "settings": {
                    "base_url": slack.base_url,
                    "token": Secret(token.access_token, name="slack_bot_token"),
                    "auto_join": True,
                },
            }
        )
    return found
