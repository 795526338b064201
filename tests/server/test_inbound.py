"""Inbound webhooks: raw-body verification, deduplication, dispatch, Slack's challenge."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

from connectors.adapters.slack.verify import sign_slack_request
from connectors.adapters.webhook.signing import decode_whsec, standard_signature
from connectors.jobs.queue import JobQueue
from connectors.secrets.secret import Secret
from connectors.server.inbound import InboundEndpoint, InboundEvent, InboundRegistry, enqueue_job
from tests.server._support import DEFAULT_SETTINGS, Env, make_server_hub, setup_env

SLACK_SECRET = "slack-signing-secret-0123456789"
WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()


def scenario(
    tmp_path: Path, body: Callable[[Env, list[InboundEvent], JobQueue], Awaitable[None]]
) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        received: list[InboundEvent] = []

        async def collect(event: InboundEvent) -> None:
            received.append(event)

        queue = JobQueue(hub.services.database, clock=hub.clock)
        registry = InboundRegistry()
        registry.add(InboundEndpoint("slack-events", "acme", "slack", "slack_signing", collect))
        registry.add(
            InboundEndpoint(
                "orders", "globex", "standard", "orders_whsec", enqueue_job(queue, "order")
            )
        )
        env = await setup_env(hub, DEFAULT_SETTINGS, registry)
        await hub.services.credentials.put(
            "acme", "slack_signing", {"value": SLACK_SECRET}, actor="test"
        )
        await hub.services.credentials.put("globex", "orders_whsec", {"value": WHSEC}, actor="test")
        try:
            await body(env, received, queue)
        finally:
            await hub.aclose()

    asyncio.run(main())


def slack_headers(env: Env, body: bytes, secret: str = SLACK_SECRET) -> dict[str, str]:
    stamp = int(env.hub.clock.time())
    return {
        "X-Slack-Request-Timestamp": str(stamp),
        "X-Slack-Signature": sign_slack_request(Secret(secret), stamp, body),
        "Content-Type": "application/json",
    }


def test_a_signed_slack_event_is_dispatched_once(tmp_path: Path) -> None:
    async def body(env: Env, received: list[InboundEvent], queue: JobQueue) -> None:
        # Unusual spacing: the signature covers these exact bytes, not a re-serialisation.
        raw = b'{"type":"event_callback",  "event": {"type":"app_mention"}}'
        headers = slack_headers(env, raw)
        async with env.client() as sender:
            first = await sender.post("/api/webhooks/slack-events", content=raw, headers=headers)
            again = await sender.post("/api/webhooks/slack-events", content=raw, headers=headers)
        assert first.json() == {"status": "accepted"}
        assert again.status_code == 200
        assert again.json() == {"status": "duplicate"}
        (event,) = received
        assert event.tenant == "acme"
        assert event.body == raw

    scenario(tmp_path, body)


def test_bad_signatures_and_unknown_endpoints_get_the_same_401(tmp_path: Path) -> None:
    async def body(env: Env, received: list[InboundEvent], queue: JobQueue) -> None:
        raw = b'{"type":"event_callback"}'
        async with env.client() as sender:
            wrong = await sender.post(
                "/api/webhooks/slack-events",
                content=raw,
                headers=slack_headers(env, raw, "another-secret-entirely"),
            )
            changed = await sender.post(
                "/api/webhooks/slack-events",
                content=raw + b" ",
                headers=slack_headers(env, raw),
            )
            unknown = await sender.post(
                "/api/webhooks/nope", content=raw, headers=slack_headers(env, raw)
            )
            unsigned = await sender.post("/api/webhooks/slack-events", content=raw)
        for response in (wrong, changed, unknown, unsigned):
            assert response.status_code == 401
            assert response.json() == {"error": "unauthorized"}
        assert received == []

    scenario(tmp_path, body)


def test_slack_url_verification_is_answered_with_the_challenge(tmp_path: Path) -> None:
    async def body(env: Env, received: list[InboundEvent], queue: JobQueue) -> None:
        raw = json.dumps({"type": "url_verification", "challenge": "abc123"}).encode()
        async with env.client() as sender:
            response = await sender.post(
                "/api/webhooks/slack-events", content=raw, headers=slack_headers(env, raw)
            )
        assert response.json() == {"challenge": "abc123"}
        assert received == []

    scenario(tmp_path, body)


def test_a_standard_webhook_is_queued_as_a_job_once(tmp_path: Path) -> None:
    async def body(env: Env, received: list[InboundEvent], queue: JobQueue) -> None:
        raw = b'{"order": 42}'
        stamp = str(int(env.hub.clock.time()))
        signature = standard_signature(decode_whsec(WHSEC), "msg_1", stamp, raw)
        headers = {
            "webhook-id": "msg_1",
            "webhook-timestamp": stamp,
            "webhook-signature": signature,
        }
        async with env.client() as sender:
            first = await sender.post("/api/webhooks/orders", content=raw, headers=headers)
            again = await sender.post("/api/webhooks/orders", content=raw, headers=headers)
        assert first.json() == {"status": "accepted"}
        assert again.json() == {"status": "duplicate"}
        (job,) = await queue.list(name="order")
        assert job.tenant == "globex"

    scenario(tmp_path, body)
