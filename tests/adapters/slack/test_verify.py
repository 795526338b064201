"""Inbound verification of Slack's v0 signatures, driven by the emulator's signed deliveries."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from connectors.adapters.slack.verify import (
    ReplayCache,
    sign_slack_request,
    verify_slack_request,
)
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed, InvalidSetting
from connectors.secrets import Secret
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig, slack_signature

SECRET = Secret("emulator-signing-secret")


class Receiver:
    """An app's inbound endpoint: verifies each request and keeps what it received."""

    def __init__(self, clock: FakeClock, secret: Secret = SECRET) -> None:
        self.clock = clock
        self.secret = secret
        self.replays = ReplayCache(clock)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.app = Starlette(routes=[Route("/slack/events", self.events, methods=["POST"])])

    async def events(self, request: Request) -> JSONResponse:
        body = await request.body()
        headers = dict(request.headers)
        self.received.append((headers, body))
        try:
            verify_slack_request(
                headers, body, self.secret, clock=self.clock, replay_guard=self.replays
            )
        except AuthenticationFailed as exc:
            return JSONResponse({"refused": exc.provider_code}, status_code=401)
        return JSONResponse({"ok": True})


def _deliver(emulator, receiver, **kwargs):
    async def main():
        transport = httpx2.ASGITransport(app=receiver.app)
        async with httpx2.AsyncClient(transport=transport) as client:
            return await emulator.deliver_event(
                "https://app.test/slack/events",
                {"type": "app_mention", "text": "<@UB0000001> hi", "user": "U00000001"},
                client=client,
                **kwargs,
            )

    return asyncio.run(main())


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def emulator(clock):
    return SlackEmulator(SlackEmulatorConfig(), clock=clock)


def test_a_request_signed_by_slack_is_accepted(emulator, clock):
    receiver = Receiver(clock)
    response = _deliver(emulator, receiver)
    assert response.status_code == 200


def test_a_replayed_request_is_refused_the_second_time(emulator, clock):
    receiver = Receiver(clock)
    _deliver(emulator, receiver)
    headers, body = receiver.received[0]
    with pytest.raises(AuthenticationFailed) as info:
        verify_slack_request(headers, body, SECRET, clock=clock, replay_guard=receiver.replays)
    assert info.value.provider_code == "replayed_request"


def test_a_stale_request_is_refused(emulator, clock):
    receiver = Receiver(clock)
    response = _deliver(emulator, receiver, timestamp=int(clock.time()) - 301)
    assert response.json() == {"refused": "stale_timestamp"}
    headers, body = receiver.received[0]
    clock_later = FakeClock(wall_start=clock.time() + 600)
    with pytest.raises(AuthenticationFailed):
        verify_slack_request(headers, body, SECRET, clock=clock_later)


def test_the_window_is_five_minutes_either_way(clock):
    now = int(clock.time())
    body = b'{"type":"event_callback"}'
    for ts in (now - 300, now + 300):
        headers = {
            "X-Slack-Request-Timestamp": str(ts),
            "X-Slack-Signature": sign_slack_request(SECRET, ts, body),
        }
        assert verify_slack_request(headers, body, SECRET, clock=clock) == ts
    headers = {
        "X-Slack-Request-Timestamp": str(now + 301),
        "X-Slack-Signature": sign_slack_request(SECRET, now + 301, body),
    }
    with pytest.raises(AuthenticationFailed) as info:
        verify_slack_request(headers, body, SECRET, clock=clock)
    assert info.value.provider_code == "future_timestamp"


def test_a_tampered_body_is_refused(emulator, clock):
    receiver = Receiver(clock)
    _deliver(emulator, receiver)
    headers, body = receiver.received[0]
    tampered = body.replace(b"hi", b"ho")
    with pytest.raises(AuthenticationFailed) as info:
        verify_slack_request(headers, tampered, SECRET, clock=clock)
    assert info.value.provider_code == "invalid_signature"


def test_a_request_signed_with_another_secret_is_refused(emulator, clock):
    receiver = Receiver(clock)
    response = _deliver(emulator, receiver, signing_secret="some-other-apps-secret")
    assert response.json() == {"refused": "invalid_signature"}


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "missing_timestamp"),
        ({"X-Slack-Request-Timestamp": "1700000000"}, "missing_signature"),
        (
            {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
            "malformed_timestamp",
        ),
        (
            {"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v1=" + "0" * 64},
            "malformed_signature",
        ),
        (
            {"X-Slack-Request-Timestamp": "1700000000", "X-Slack-Signature": "v0=xyz"},
            "malformed_signature",
        ),
    ],
)
def test_missing_or_malformed_headers_are_refused(clock, headers, code):
    with pytest.raises(AuthenticationFailed) as info:
        verify_slack_request(headers, b"{}", SECRET, clock=clock)
    assert info.value.provider_code == code


def test_refusals_never_show_the_secret_or_the_expected_signature(clock):
    now = int(clock.time())
    expected = sign_slack_request(SECRET, now, b"body")
    headers = {"x-slack-request-timestamp": str(now), "x-slack-signature": "v0=" + "a" * 64}
    with pytest.raises(AuthenticationFailed) as info:
        verify_slack_request(headers, b"body", SECRET, clock=clock)
    text = str(info.value) + repr(info.value)
    assert SECRET.reveal() not in text
    assert expected not in text
    assert expected[3:] not in text


def test_the_secret_must_be_a_secret_and_the_tolerance_positive(clock):
    with pytest.raises(InvalidSetting):
        verify_slack_request({}, b"", "plain", clock=clock)  # type: ignore[arg-type]
    with pytest.raises(InvalidSetting):
        verify_slack_request({}, b"", SECRET, clock=clock, tolerance=0)


def test_the_replay_cache_forgets_keys_after_they_expire(clock):
    cache = ReplayCache(clock)
    assert cache("k", clock.time() + 10) is True
    assert cache("k", clock.time() + 10) is False
    clock.advance(11)
    assert cache("k", clock.time() + 10) is True


def test_a_full_replay_cache_refuses_rather_than_forgets(clock):
    cache = ReplayCache(clock, max_entries=2)
    assert cache("a", clock.time() + 10)
    assert cache("b", clock.time() + 10)
    assert cache("c", clock.time() + 10) is False
    clock.advance(11)
    assert cache("c", clock.time() + 10) is True


@given(body=st.binary(max_size=512), offset=st.integers(min_value=-300, max_value=300))
def test_any_body_signed_like_slack_verifies(body, offset):
    clock = FakeClock()
    ts = int(clock.time()) + offset
    headers = {
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": slack_signature(SECRET.reveal(), ts, body),
    }
    assert verify_slack_request(headers, body, SECRET, clock=clock) == ts


@given(body=st.binary(min_size=1, max_size=256), data=st.data())
def test_changing_any_byte_breaks_the_signature(body, data):
    clock = FakeClock()
    ts = int(clock.time())
    signature = slack_signature(SECRET.reveal(), ts, body)
    index = data.draw(st.integers(min_value=0, max_value=len(body) - 1))
    flip = data.draw(st.integers(min_value=1, max_value=255))
    tampered = body[:index] + bytes([body[index] ^ flip]) + body[index + 1 :]
    headers = {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature}
    with pytest.raises(AuthenticationFailed):
        verify_slack_request(headers, tampered, SECRET, clock=clock)
