"""The webhook adapter: signed durable outbound delivery and inbound verification.

- :mod:`.signing` — Standard Webhooks / GitHub / custom HMAC signatures, message ids;
- :mod:`.verify` — :func:`verify_inbound` for Standard Webhooks, GitHub, Stripe, Slack, HMAC;
- :mod:`.endpoints` — endpoints per tenant, secrets by reference;
- :mod:`.outbox` — send (transactional), replay, attempts log, dead letters;
- :mod:`.delivery` — the ``webhook.deliver`` job and :class:`DeliveryService`;
- :mod:`.schedule` — the retry schedule and the endpoint-disable policy;
- :mod:`.connector` — :class:`WebhookConnector`.
"""

from connectors.adapters.webhook.connector import WebhookConnector
from connectors.adapters.webhook.delivery import (
    DELIVER_JOB,
    SERVICE_KEY,
    DeliveryOptions,
    DeliveryResult,
    DeliveryService,
    deliver_job,
    register_jobs,
)
from connectors.adapters.webhook.endpoints import Endpoint, EndpointStore, StaticSecrets
from connectors.adapters.webhook.outbox import WebhookOutbox
from connectors.adapters.webhook.schedule import DEFAULT_DELAYS, DisablePolicy, RetrySchedule
from connectors.adapters.webhook.signing import HmacScheme, SigningScheme, new_message_id
from connectors.adapters.webhook.verify import ReplayedDelivery, VerifiedEvent, verify_inbound

__all__ = [
    "DEFAULT_DELAYS",
    "DELIVER_JOB",
    "SERVICE_KEY",
    "DeliveryOptions",
    "DeliveryResult",
    "DeliveryService",
    "DisablePolicy",
    "Endpoint",
    "EndpointStore",
    "HmacScheme",
    "ReplayedDelivery",
    "RetrySchedule",
    "SigningScheme",
    "StaticSecrets",
    "VerifiedEvent",
    "WebhookConnector",
    "WebhookOutbox",
    "deliver_job",
    "new_message_id",
    "register_jobs",
    "verify_inbound",
]
