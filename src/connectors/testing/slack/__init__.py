"""A Slack Web API emulator for tests and benchmarks (ASGI, Starlette).

::

    emulator = create_slack_app()
    async with httpx2.AsyncClient(
        transport=httpx2.ASGITransport(app=emulator.app), base_url="https://slack.test"
    ) as client:
        r = await client.post(
            "/api/chat.postMessage",
            data={"channel": "C00000001", "text": "hi"},
            headers={"Authorization": f"Bearer {emulator.config.bot_token}"},
        )

It reproduces what a connector can observe: the ``ok``/``error`` envelope with warnings, token
checks and rotation, scopes, per-method tier limits and chat.postMessage's per-channel limit (429
with ``Retry-After``), cursor paging, the files upload v2 flow, incoming webhooks and signed
Events API deliveries. Not modelled: enterprise grids, DMs and MPIMs, user presence, Socket Mode.
"""

from connectors.testing.slack.catalog import MethodCatalog, MethodSpec, load_catalog
from connectors.testing.slack.config import DEFAULT_BOT_SCOPES, ChannelSeed, SlackEmulatorConfig
from connectors.testing.slack.emulator import SlackEmulator, create_slack_app
from connectors.testing.slack.events import slack_signature
from connectors.testing.slack.server import build_server, run_slack_emulator
from connectors.testing.slack.tokens import IssuedToken

__all__ = [
    "DEFAULT_BOT_SCOPES",
    "ChannelSeed",
    "IssuedToken",
    "MethodCatalog",
    "MethodSpec",
    "SlackEmulator",
    "SlackEmulatorConfig",
    "build_server",
    "create_slack_app",
    "load_catalog",
    "run_slack_emulator",
    "slack_signature",
]
