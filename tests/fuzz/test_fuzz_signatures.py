"""Fuzzing webhook signature headers: ``connectors.adapters.webhook.verify`` (Standard Webhooks,
GitHub, Stripe, Slack, custom HMAC) and the Slack adapter's ``verify_slack_request``.

Properties: random headers raise nothing but
:class:`~connectors.errors.AuthenticationFailed`; a correctly signed request verifies; flipping
any byte of its body makes it fail (typed).
"""

from __future__ import annotations

import base64
import contextlib

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.slack.verify import sign_slack_request, verify_slack_request
from connectors.adapters.webhook.signing import HmacScheme, standard_signature
from connectors.adapters.webhook.verify import verify_signature
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed
from connectors.secrets.secret import Secret

from ._support import fuzz

NOW = 1_700_000_000
WHSEC = Secret("whsec_" + base64.b64encode(b"fuzz-key-0123456789abcdef0123456").decode())
SLACK_SECRET = Secret("8f742231b10e8888abcd99yyyzzz85a5")
_SCHEMES = st.sampled_from(
    ["standard", "github", "stripe", "slack", HmacScheme(), HmacScheme(signed="timestamp.body"),
     HmacScheme(signed="id.timestamp.body", encoding="base64", key="whsec", prefix="sha256=")]
)  # fmt: skip
_HEADER_NAMES = st.sampled_from(
    ["webhook-id", "webhook-timestamp", "webhook-signature", "X-Hub-Signature-256",
     "X-GitHub-Delivery", "Stripe-Signature", "X-Slack-Request-Timestamp", "X-Slack-Signature",
     "X-Signature", "Webhook-Timestamp"]
)  # fmt: skip
_STAMPS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.sampled_from([str(NOW), str(NOW - 299), " 1700000000 ", "1_700_000_000", "1e9", "",
                     "9" * 400, "-" + "9" * 400, "٣", "0x10"]),
    st.text(max_size=12),
)  # fmt: skip
_VALUES = st.one_of(
    st.text(max_size=80),
    _STAMPS,
    st.sampled_from(["v1,abc", "v1,", "v0=" + "0" * 64, "sha256=" + "a" * 64, "t=1,v1=ab",
                     f"t={NOW},v1=" + "0" * 64, "v1,a v1,b v2,c"]),
)  # fmt: skip


@fuzz
@given(
    scheme=_SCHEMES,
    headers=st.dictionaries(_HEADER_NAMES | st.text(max_size=10), _VALUES, max_size=6),
    body=st.binary(max_size=64),
)
def test_random_headers_raise_only_authentication_failed(
    scheme: object, headers: dict[str, str], body: bytes
) -> None:
    try:
        verify_signature(scheme, headers, body, [WHSEC], clock=FakeClock(wall_start=NOW))  # type: ignore[arg-type]
    except AuthenticationFailed as exc:
        assert WHSEC.reveal() not in str(exc)  # noqa: PT017 - rejections are typed, then inspected


@fuzz
@given(
    msg_id=st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and "\n" not in s),
    body=st.binary(max_size=200),
    skew=st.integers(-299, 299),
    flip=st.integers(min_value=0),
)
def test_a_standard_signature_verifies_and_any_flipped_byte_fails(
    msg_id: str, body: bytes, skew: int, flip: int
) -> None:
    clock = FakeClock(wall_start=NOW)
    stamp = str(NOW + skew)
    key = base64.b64decode(WHSEC.reveal().removeprefix("whsec_"))
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": standard_signature(key, msg_id, stamp, body),
    }
    event = verify_signature("standard", headers, body, [WHSEC], clock=clock)
    assert event.body == body
    if body:
        i = flip % len(body)
        tampered = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1 :]
        try:
            verify_signature("standard", headers, tampered, [WHSEC], clock=clock)
        except AuthenticationFailed:
            return
        raise AssertionError("a tampered body verified")


@fuzz
@given(
    headers=st.dictionaries(
        st.sampled_from(["X-Slack-Request-Timestamp", "X-Slack-Signature", "x-slack-signature"])
        | st.text(max_size=8),
        _VALUES,
        max_size=4,
    ),
    body=st.binary(max_size=64),
)
def test_slack_verification_raises_only_authentication_failed(
    headers: dict[str, str], body: bytes
) -> None:
    try:
        verify_slack_request(headers, body, SLACK_SECRET, clock=FakeClock(wall_start=NOW))
    except AuthenticationFailed as exc:
        assert exc.provider_code  # noqa: PT017 - rejections are typed, then inspected
        assert SLACK_SECRET.reveal() not in str(exc)  # noqa: PT017 - rejections are typed, then inspected


@fuzz
@given(body=st.binary(max_size=200), skew=st.integers(-299, 299))
def test_a_slack_signature_verifies(body: bytes, skew: int) -> None:
    stamp = str(NOW + skew)
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": sign_slack_request(SLACK_SECRET, stamp, body),
    }
    clock = FakeClock(wall_start=NOW)
    assert verify_slack_request(headers, body, SLACK_SECRET, clock=clock) == NOW + skew


@fuzz
@given(scheme=_SCHEMES, stamp=_STAMPS)
def test_any_timestamp_text_raises_only_authentication_failed(scheme: object, stamp: str) -> None:
    """Every header present, only the timestamp varies (found: a 400-digit timestamp crashed
    the float subtraction with ``OverflowError``)."""
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": stamp,
        "webhook-signature": "v1,AAAA",
        "X-Hub-Signature-256": "sha256=00",
        "Stripe-Signature": f"t={stamp},v1=00",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": "v0=00",
        "X-Signature": "00",
    }
    with contextlib.suppress(AuthenticationFailed):
        verify_signature(scheme, headers, b"{}", [WHSEC], clock=FakeClock(wall_start=NOW))  # type: ignore[arg-type]
