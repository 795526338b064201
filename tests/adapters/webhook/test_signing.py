"""Outbound signatures: the official Standard Webhooks vector, GitHub's example, rotation."""

import base64
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.webhook.signing import (
    HmacScheme,
    SigningScheme,
    decode_whsec,
    github_signature,
    new_message_id,
    sign_headers,
    standard_signature,
)
from connectors.errors import ConfigurationError
from connectors.secrets import Secret

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_official_vector_signs():
    assert standard_signature(decode_whsec(SW_SECRET), SW_ID, SW_TS, SW_BODY) == SW_SIG


def test_whsec_prefix_is_optional_and_padding_may_be_missing():
    raw = decode_whsec(SW_SECRET)
    assert decode_whsec(SW_SECRET.removeprefix("whsec_")) == raw
    unpadded = "whsec_" + base64.b64encode(b"x" * 25).decode().rstrip("=")
    assert decode_whsec(unpadded) == b"x" * 25


def test_a_malformed_secret_is_refused_without_showing_it():
    with pytest.raises(ConfigurationError) as info:
        decode_whsec(Secret("whsec_!!not-base64!!", name="hook"))
    assert "not-base64" not in str(info.value)
    assert "hook" in str(info.value)


def test_github_published_example():
    assert github_signature("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_rotation_sends_one_signature_per_active_secret():
    new = Secret("whsec_" + base64.b64encode(b"n" * 32).decode())
    old = Secret(SW_SECRET)
    headers = sign_headers(SigningScheme.STANDARD, SW_ID, SW_TS, SW_BODY, [new, old])
    entries = headers["webhook-signature"].split(" ")
    assert len(entries) == 2
    assert entries[1] == SW_SIG
    assert headers["webhook-id"] == SW_ID
    assert headers["webhook-timestamp"] == str(SW_TS)


def test_github_scheme_signs_the_body_with_the_newest_secret():
    headers = sign_headers(
        SigningScheme.GITHUB, "msg_x", 1, b"Hello, World!", [Secret("It's a Secret to Everybody")]
    )
    assert headers["X-Hub-Signature-256"].startswith("sha256=757107ea")


def test_custom_scheme_uses_header_algorithm_prefix_and_content():
    scheme = HmacScheme(
        header="X-Sig", algorithm="sha512", prefix="s=", encoding="base64", signed="timestamp.body"
    )
    headers = sign_headers(
        SigningScheme.CUSTOM, "msg_x", 42, b"{}", [Secret("k" * 8)], custom=scheme
    )
    assert headers["X-Sig"].startswith("s=")
    assert len(base64.b64decode(headers["X-Sig"][2:])) == 64


def test_signing_without_a_secret_is_a_configuration_error():
    with pytest.raises(ConfigurationError):
        sign_headers(SigningScheme.STANDARD, "msg_x", 1, b"", [])


def test_invalid_custom_header_names_are_refused():
    with pytest.raises(ConfigurationError):
        HmacScheme(header="X Bad")


def test_message_ids_are_ulid_like_sortable_and_dot_free():
    first = new_message_id(1_700_000_000.0)
    second = new_message_id(1_700_000_001.0)
    assert re.fullmatch(r"msg_[0-9A-HJKMNP-TV-Z]{26}", first)
    assert first < second
    assert "." not in first


@given(key=st.binary(min_size=1, max_size=64), body=st.binary(max_size=512))
def test_standard_signature_is_base64_of_32_bytes(key, body):
    sig = standard_signature(key, "msg_a", 1, body)
    assert sig.startswith("v1,")
    assert len(base64.b64decode(sig[3:])) == 32


def test_the_receiver_example_in_the_docs_verifies_our_signatures():
    import pathlib
    import time

    doc = pathlib.Path(__file__).resolve().parents[3] / "docs" / "connectors" / "webhook.md"
    text = doc.read_text()
    start = text.index("```python\nimport base64, hashlib, hmac, time")
    code = text[start + len("```python\n") : text.index("```", start + 10)]
    namespace: dict = {}
    exec(compile(code, str(doc), "exec"), namespace)
    now = int(time.time())
    headers = sign_headers(SigningScheme.STANDARD, SW_ID, now, SW_BODY, [Secret(SW_SECRET)])
    namespace["verify"](headers, SW_BODY, SW_SECRET)
    with pytest.raises(ValueError, match="bad signature"):
        namespace["verify"](headers, SW_BODY + b" ", SW_SECRET)
