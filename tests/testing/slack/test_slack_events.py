"""Events API delivery: signed envelopes a receiver can verify, and the URL handshake."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx2
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.testing.slack import slack_signature


def reference_signature(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's documented recipe, written out independently of the emulator."""
    base = f"v0:{timestamp}:".encode() + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class Receiver:
    """A tiny app that records what Slack sent and echoes url_verification challenges."""

    def __init__(self) -> None:
        self.seen: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/slack/events", self.handle, methods=["POST"])])

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.seen.append((dict(request.headers), body))
        payload = json.loads(body)
        if payload["type"] == "url_verification":
            return JSONResponse({"challenge": payload["challenge"]})
        return Response(status_code=200)


async def _deliver(emulator, receiver, **kwargs):
    transport = httpx2.ASGITransport(app=receiver.app)
    async with httpx2.AsyncClient(transport=transport, base_url="https://app.test") as client:
        return await emulator.deliver_event(
            "https://app.test/slack/events",
            {"type": "app_mention", "user": "U00000001", "text": "<@UB0000001> hi"},
            client=client,
            **kwargs,
        )


def test_delivered_event_signature_matches_the_reference_hmac(emulator) -> None:
    receiver = Receiver()
    response = asyncio.run(_deliver(emulator, receiver))
    assert response.status_code == 200
    headers, body = receiver.seen[0]
    timestamp = headers["x-slack-request-timestamp"]
    assert timestamp == str(int(emulator.clock.time()))
    expected = reference_signature(emulator.config.signing_secret, timestamp, body)
    assert headers["x-slack-signature"] == expected


def test_delivered_event_verifies_with_slack_sdks_verifier(emulator) -> None:
    receiver = Receiver()
    asyncio.run(_deliver(emulator, receiver, signing_secret="s3cr3t"))
    headers, body = receiver.seen[0]

    class Now:
        def now(self) -> float:
            return emulator.clock.time()

    assert SignatureVerifier("s3cr3t", clock=Now()).is_valid_request(body, headers)
    assert not SignatureVerifier("other", clock=Now()).is_valid_request(body, headers)


def test_event_callback_envelope_has_slacks_fields(emulator) -> None:
    receiver = Receiver()
    asyncio.run(_deliver(emulator, receiver, event_id="Ev123"))
    headers, body = receiver.seen[0]
    payload = json.loads(body)
    assert payload["type"] == "event_callback"
    assert payload["event_id"] == "Ev123"
    assert payload["team_id"] == "T0001"
    assert payload["api_app_id"] == emulator.config.app_id
    assert payload["event"]["type"] == "app_mention"
    assert payload["authorizations"][0]["user_id"] == "UB0000001"
    assert headers["content-type"] == "application/json"


def test_configured_events_url_is_used_when_none_is_given(make_emulator) -> None:
    emulator = make_emulator(events_url="https://app.test/slack/events")
    receiver = Receiver()

    async def main():
        transport = httpx2.ASGITransport(app=receiver.app)
        async with httpx2.AsyncClient(transport=transport) as client:
            return await emulator.deliver_event(None, {"type": "app_home_opened"}, client=client)

    assert asyncio.run(main()).status_code == 200
    assert json.loads(receiver.seen[0][1])["event"] == {"type": "app_home_opened"}


def test_stale_timestamps_can_be_sent_to_test_replay_protection(emulator) -> None:
    receiver = Receiver()
    old = int(emulator.clock.time()) - 600
    asyncio.run(_deliver(emulator, receiver, timestamp=old, retry_num=1))
    headers, body = receiver.seen[0]
    assert headers["x-slack-request-timestamp"] == str(old)
    assert headers["x-slack-retry-num"] == "1"
    assert headers["x-slack-signature"] == reference_signature(
        emulator.config.signing_secret, str(old), body
    )


def test_url_verification_round_trip(emulator) -> None:
    receiver = Receiver()

    async def main():
        transport = httpx2.ASGITransport(app=receiver.app)
        async with httpx2.AsyncClient(transport=transport, base_url="https://app.test") as client:
            return await emulator.verify_url(
                "https://app.test/slack/events", client=client, challenge="abc123"
            )

    response = asyncio.run(main())
    assert response.json() == {"challenge": "abc123"}
    payload = json.loads(receiver.seen[0][1])
    assert payload == {
        "token": emulator.config.verification_token,
        "challenge": "abc123",
        "type": "url_verification",
    }


@given(
    secret=st.text(min_size=1, max_size=40),
    timestamp=st.integers(0, 2**40),
    body=st.binary(max_size=300),
)
def test_signature_equals_the_reference_for_any_input(secret, timestamp, body) -> None:
    assert slack_signature(secret, timestamp, body) == reference_signature(
        secret, str(timestamp), body
    )
