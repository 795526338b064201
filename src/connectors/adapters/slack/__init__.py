"""The Slack adapter: Web API operations, inbound request verification, OAuth install/rotation.

::

    async with hub.open("slack", tenant_id="acme") as slack:
        posted = await slack.post_message("#alerts", "Deploy finished")
        async for message in slack.history("alerts", oldest="1700000000"):
            ...

Modules: :mod:`.connector` (the operations), :mod:`.classify` (``ok: false`` → typed errors),
:mod:`.tiers` (per-method rate tiers), :mod:`.limits` (limiter keys), :mod:`.blocks` (content
limits), :mod:`.files` (upload sources), :mod:`.channels` (name → id), :mod:`.webhooks`
(incoming webhooks), :mod:`.verify` (inbound ``v0`` signatures), :mod:`.oauth` (install and
token rotation), :mod:`.auth` (token scoped to the Web API), :mod:`.settings`, :mod:`.models`.
"""

from connectors.adapters.slack.blocks import MAX_BLOCKS, MAX_TEXT, check_message
from connectors.adapters.slack.classify import SlackClassifier, error_for
from connectors.adapters.slack.connector import SlackConnector
from connectors.adapters.slack.limits import SlackRateLimits
from connectors.adapters.slack.models import (
    AuthIdentity,
    InstalledApp,
    JsonObject,
    PostedMessage,
    UploadedFile,
)
from connectors.adapters.slack.oauth import InstallRequest, SlackOAuthApp, SlackRefreshGrant
from connectors.adapters.slack.settings import SlackSettings
from connectors.adapters.slack.tiers import METHOD_TIERS, Tier, tier_of
from connectors.adapters.slack.verify import (
    ReplayCache,
    ReplayGuard,
    sign_slack_request,
    verify_slack_request,
)

__all__ = [
    "MAX_BLOCKS",
    "MAX_TEXT",
    "METHOD_TIERS",
    "AuthIdentity",
    "InstallRequest",
    "InstalledApp",
    "JsonObject",
    "PostedMessage",
    "ReplayCache",
    "ReplayGuard",
    "SlackClassifier",
    "SlackConnector",
    "SlackOAuthApp",
    "SlackRateLimits",
    "SlackRefreshGrant",
    "SlackSettings",
    "Tier",
    "UploadedFile",
    "check_message",
    "error_for",
    "sign_slack_request",
    "tier_of",
    "verify_slack_request",
]
