"""Inbound verification: official vectors, tampering, staleness, replays, round trips."""

import asyncio
import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.adapters.webhook.signing import (
    HmacScheme,
    SigningScheme,
    decode_whsec,
    sign_headers,
    standard_signature,
)
from connectors.adapters.webhook.verify import (
    ReplayedDelivery,
    verify_inbound,
    verify_signature,
)
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed, Conflict
from connectors.secrets import Secret
from connectors.state import MemoryStateBackend

SW_SECRET = Secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

SLACK_SECRET = Secret("8f742231b10e8888abcd99yyyzzz85a5")
SLACK_TS = "1531420618"
SLACK_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F"
    b"96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
SLACK_SIG = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"

STRIPE_SECRET = Secret("whsec_test_secret")
STRIPE_BODY = b'{"id":"evt_1","object":"event"}'
STRIPE_SIG = "0c8670ed117751cc551a20e35839447075c42800ea3cf3e8a2fbda99cd1e6edd"


def clock_at(ts: float) -> FakeClock:
    return FakeClock(wall_start=ts)


def sw_headers(sig=SW_SIG, ts=SW_TS, msg_id=SW_ID):
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}


def run(coro):
    return asyncio.run(coro)


# --- Standard Webhooks ------------------------------------------------------------------------


def test_standard_webhooks_official_vector_verifies():
    event = verify_signature("standard", sw_headers(), SW_BODY, [SW_SECRET], clock=clock_at(SW_TS))
    assert event.id == SW_ID
    assert event.timestamp == SW_TS
    assert event.json() == {"test": 2432232314}


def test_standard_webhooks_official_negative_vector_fails():
    bad = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OA="
    with pytest.raises(AuthenticationFailed, match="no signature matches"):
        verify_signature("standard", sw_headers(bad), SW_BODY, [SW_SECRET], clock=clock_at(SW_TS))


def test_a_header_with_bogus_entries_and_one_valid_signature_passes():
    header = f"v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc= {SW_SIG}"
    verify_signature("standard", sw_headers(header), SW_BODY, [SW_SECRET], clock=clock_at(SW_TS))


def test_headers_are_case_insensitive():
    headers = {k.upper(): v for k, v in sw_headers().items()}
    verify_signature("standard", headers, SW_BODY, [SW_SECRET], clock=clock_at(SW_TS))


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_fails(missing):
    headers = sw_headers()
    del headers[missing]
    with pytest.raises(AuthenticationFailed, match=missing):
        verify_signature("standard", headers, SW_BODY, [SW_SECRET], clock=clock_at(SW_TS))


@pytest.mark.parametrize("skew", [301, -301])
def test_timestamps_beyond_five_minutes_either_way_fail(skew):
    key = decode_whsec(SW_SECRET)
    ts = SW_TS + skew
    sig = standard_signature(key, SW_ID, ts, SW_BODY)
    with pytest.raises(AuthenticationFailed, match="tolerance"):
        verify_signature(
            "standard", sw_headers(sig, ts), SW_BODY, [SW_SECRET], clock=clock_at(SW_TS)
        )
    # within tolerance it passes
    verify_signature(
        "standard", sw_headers(sig, ts), SW_BODY, [SW_SECRET], clock=clock_at(SW_TS + skew - 1)
    )


def test_a_rotated_secret_list_verifies_with_either_secret():
    other = Secret("whsec_" + base64.b64encode(b"o" * 32).decode())
    verify_signature("standard", sw_headers(), SW_BODY, [other, SW_SECRET], clock=clock_at(SW_TS))


def test_the_raw_body_must_be_bytes():
    with pytest.raises(TypeError):
        verify_signature(
            "standard", sw_headers(), SW_BODY.decode(), [SW_SECRET], clock=clock_at(SW_TS)
        )


def test_reserialised_json_fails():
    with pytest.raises(AuthenticationFailed):
        verify_signature(
            "standard", sw_headers(), b'{"test":2432232314}', [SW_SECRET], clock=clock_at(SW_TS)
        )


# --- GitHub, Stripe, Slack, HMAC ------------------------------------------------------------


def test_github_published_example_verifies_and_tamper_fails():
    secret = Secret("It's a Secret to Everybody")
    headers = {
        "X-Hub-Signature-256": "sha256=757107ea0eb2509fc211221cce984b8a"
        "37570b6d7586c22c46f4379c8b043e17",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    event = verify_signature("github", headers, b"Hello, World!", [secret], clock=clock_at(0))
    assert event.id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    with pytest.raises(AuthenticationFailed):
        verify_signature("github", headers, b"Hello, World?", [secret], clock=clock_at(0))


def test_slack_published_example_verifies_and_stale_or_tampered_fails():
    headers = {"X-Slack-Request-Timestamp": SLACK_TS, "X-Slack-Signature": SLACK_SIG}
    verify_signature("slack", headers, SLACK_BODY, [SLACK_SECRET], clock=clock_at(1531420618))
    with pytest.raises(AuthenticationFailed, match="tolerance"):
        verify_signature("slack", headers, SLACK_BODY, [SLACK_SECRET], clock=clock_at(1531421000))
    with pytest.raises(AuthenticationFailed):
        verify_signature(
            "slack", headers, SLACK_BODY + b"x", [SLACK_SECRET], clock=clock_at(1531420618)
        )


def test_stripe_signature_with_several_v1_entries_verifies():
    header = f"t=1700000000,v1={'0' * 64},v1={STRIPE_SIG},v0=ignored"
    event = verify_signature(
        "stripe", {"Stripe-Signature": header}, STRIPE_BODY, [STRIPE_SECRET], clock=clock_at(1.7e9)
    )
    assert event.id == "evt_1"


def test_stripe_keys_with_the_whole_whsec_string_not_its_base64():
    header = f"t=1700000000,v1={STRIPE_SIG}"
    wrong_key = Secret("test_secret")
    with pytest.raises(AuthenticationFailed):
        verify_signature(
            "stripe", {"Stripe-Signature": header}, STRIPE_BODY, [wrong_key], clock=clock_at(1.7e9)
        )


def test_stripe_stale_timestamp_and_missing_parts_fail():
    header = f"t=1700000000,v1={STRIPE_SIG}"
    with pytest.raises(AuthenticationFailed, match="tolerance"):
        verify_signature(
            "stripe",
            {"Stripe-Signature": header},
            STRIPE_BODY,
            [STRIPE_SECRET],
            clock=clock_at(1.7e9 + 301),
        )
    with pytest.raises(AuthenticationFailed, match="no t= or no v1="):
        verify_signature(
            "stripe",
            {"Stripe-Signature": "t=1700000000"},
            STRIPE_BODY,
            [STRIPE_SECRET],
            clock=clock_at(1.7e9),
        )


def test_generic_hmac_over_timestamp_and_body():
    scheme = HmacScheme(header="X-Sig", signed="timestamp.body", prefix="sha256=")
    secret = Secret("generic-secret")
    sig = "sha256=" + hmac.new(b"generic-secret", b"100.hello", hashlib.sha256).hexdigest()
    headers = {"X-Sig": sig, "webhook-timestamp": "100", "webhook-id": "abc"}
    event = verify_signature(scheme, headers, b"hello", [secret], clock=clock_at(100))
    assert event.id == "abc"
    with pytest.raises(AuthenticationFailed):
        verify_signature(scheme, headers, b"hellO", [secret], clock=clock_at(100))


def test_unknown_scheme_is_refused():
    with pytest.raises(AuthenticationFailed, match="unknown"):
        verify_signature("nope", {}, b"", [SW_SECRET], clock=clock_at(0))  # type: ignore[arg-type]


# --- replay protection ------------------------------------------------------------------------


def test_a_replayed_delivery_is_refused_as_a_conflict():
    state = MemoryStateBackend()
    clock = clock_at(SW_TS)

    async def main():
        await verify_inbound(
            "standard", sw_headers(), SW_BODY, [SW_SECRET], state=state, clock=clock, tenant="t"
        )
        with pytest.raises(ReplayedDelivery) as info:
            await verify_inbound(
                "standard",
                sw_headers(),
                SW_BODY,
                [SW_SECRET],
                state=state,
                clock=clock,
                tenant="t",
            )
        assert isinstance(info.value, Conflict)
        # another tenant's store of seen ids is separate
        await verify_inbound(
            "standard", sw_headers(), SW_BODY, [SW_SECRET], state=state, clock=clock, tenant="u"
        )

    run(main())


def test_a_forged_request_does_not_consume_the_delivery_id():
    state = MemoryStateBackend()
    clock = clock_at(SW_TS)
    forged = "v1," + base64.b64encode(b"\0" * 32).decode()

    async def main():
        with pytest.raises(AuthenticationFailed):
            await verify_inbound(
                "standard", sw_headers(forged), SW_BODY, [SW_SECRET], state=state, clock=clock
            )
        await verify_inbound(
            "standard", sw_headers(), SW_BODY, [SW_SECRET], state=state, clock=clock
        )

    run(main())


# --- properties --------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    raw_key=st.binary(min_size=24, max_size=64),
    body=st.binary(max_size=300),
    data=st.data(),
)
def test_sign_then_verify_round_trips_and_any_single_byte_tamper_fails(raw_key, body, data):
    secret = Secret("whsec_" + base64.b64encode(raw_key).decode())
    clock = clock_at(1_700_000_000)
    headers = sign_headers(SigningScheme.STANDARD, "msg_abc", 1_700_000_000, body, [secret])
    verify_signature("standard", headers, body, [secret], clock=clock)
    if body:
        index = data.draw(st.integers(0, len(body) - 1))
        flip = data.draw(st.integers(1, 255))
        tampered = bytearray(body)
        tampered[index] ^= flip
        with pytest.raises(AuthenticationFailed):
            verify_signature("standard", headers, bytes(tampered), [secret], clock=clock)
    sig = headers["webhook-signature"]
    index = data.draw(st.integers(3, len(sig) - 2))  # leave base64 padding alone
    replacement = data.draw(st.sampled_from("ABCDEFGHabcdefgh0123+/"))
    if sig[index] != replacement and sig[index] != "=":
        bad = dict(headers, **{"webhook-signature": sig[:index] + replacement + sig[index + 1 :]})
        with pytest.raises(AuthenticationFailed):
            verify_signature("standard", bad, body, [secret], clock=clock)


@settings(max_examples=40, deadline=None)
@given(secret=st.text(min_size=4, max_size=40), body=st.binary(max_size=200))
def test_github_round_trip_property(secret, body):
    headers = sign_headers(SigningScheme.GITHUB, "msg_a", 1, body, [Secret(secret)])
    verify_signature("github", headers, body, [Secret(secret)], clock=clock_at(0))
    with pytest.raises(AuthenticationFailed):
        verify_signature("github", headers, body + b"!", [Secret(secret)], clock=clock_at(0))
