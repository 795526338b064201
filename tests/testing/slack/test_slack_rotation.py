"""The emulator-only ``emulator.apps.*`` secret rotation API and its overlap windows."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from tests.testing.slack.conftest import SlackCaller

from connectors.testing.slack import SlackEmulator, slack_signature


def _app_call(
    slack: SlackCaller, method: str, client_secret: str, **args: object
) -> dict[str, object]:
    client_id = slack.emulator.config.client_id
    return slack.call(method, None, client_id=client_id, client_secret=client_secret, **args)


def _oauth_error(slack: SlackCaller, secret: str) -> object:
    body = _app_call(slack, "oauth.v2.access", secret, grant_type="refresh_token")
    return body["error"]


def test_both_client_secrets_work_until_the_old_one_is_revoked(slack: SlackCaller) -> None:
    old = slack.emulator.config.client_secret
    body = _app_call(slack, "emulator.apps.rotateClientSecret", old)
    new = str(body["client_secret"])
    assert body["ok"] is True
    assert new != old
    assert _oauth_error(slack, old) == "invalid_refresh_token"  # client accepted
    assert _oauth_error(slack, new) == "invalid_refresh_token"
    assert _app_call(slack, "emulator.apps.revokeOld", new)["ok"] is True
    assert _oauth_error(slack, old) == "bad_client_secret"
    assert _oauth_error(slack, new) == "invalid_refresh_token"


def test_cancel_restores_the_old_client_secret(slack: SlackCaller) -> None:
    old = slack.emulator.config.client_secret
    new = str(_app_call(slack, "emulator.apps.rotateClientSecret", old)["client_secret"])
    assert _app_call(slack, "emulator.apps.cancel", old)["ok"] is True
    assert _oauth_error(slack, new) == "bad_client_secret"
    assert slack.emulator.default_app.client_secret == old


def test_a_second_rotation_or_a_revoke_without_one_is_refused(slack: SlackCaller) -> None:
    old = slack.emulator.config.client_secret
    assert _app_call(slack, "emulator.apps.revokeOld", old)["error"] == "no_rotation"
    _app_call(slack, "emulator.apps.rotateClientSecret", old)
    again = _app_call(slack, "emulator.apps.rotateClientSecret", old)
    assert again["error"] == "rotation_in_progress"
    assert _app_call(slack, "emulator.apps.rotateClientSecret", "wrong")["error"] == (
        "bad_client_secret"
    )


def test_refused_new_client_secrets_are_issued_but_not_accepted(slack: SlackCaller) -> None:
    slack.emulator.rotation.refuse_new_client_secrets = True
    old = slack.emulator.config.client_secret
    new = str(_app_call(slack, "emulator.apps.rotateClientSecret", old)["client_secret"])
    assert _oauth_error(slack, new) == "bad_client_secret"
    assert _oauth_error(slack, old) == "invalid_refresh_token"


def test_signing_secret_overlap_signs_with_the_old_and_verifies_both(
    slack: SlackCaller, emulator: SlackEmulator
) -> None:
    old = emulator.config.signing_secret
    rotation = emulator.rotation
    client = emulator.config.client_secret
    new = str(_app_call(slack, "emulator.apps.rotateSigningSecret", client)["signing_secret"])
    body = b'{"type":"event_callback"}'
    assert emulator.default_app.signing_secret == old, "receivers still know only the old one"
    assert rotation.signing_secrets() == (old, new)
    assert rotation.verify_signature(1, body, slack_signature(old, 1, body))
    assert rotation.verify_signature(1, body, slack_signature(new, 1, body))
    _app_call(slack, "emulator.apps.revokeOld", client, secret="signing_secret")
    assert emulator.default_app.signing_secret == new
    assert not rotation.verify_signature(1, body, slack_signature(old, 1, body))


def test_cancelling_a_signing_rotation_keeps_the_old_secret(
    slack: SlackCaller, emulator: SlackEmulator
) -> None:
    old = emulator.config.signing_secret
    client = emulator.config.client_secret
    new = str(_app_call(slack, "emulator.apps.rotateSigningSecret", client)["signing_secret"])
    _app_call(slack, "emulator.apps.cancel", client, secret="signing_secret")
    body = b"{}"
    assert emulator.rotation.signing_secrets() == (old,)
    assert not emulator.rotation.verify_signature(7, body, slack_signature(new, 7, body))


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=2**40))
def test_a_signature_with_any_other_secret_never_verifies(body: bytes, timestamp: int) -> None:
    emulator = SlackEmulator()
    emulator.rotation.rotate(emulator.default_app, "signing_secret")
    forged = slack_signature("not-the-signing-secret", timestamp, body)
    assert not emulator.rotation.verify_signature(timestamp, body, forged)
    good = slack_signature(emulator.default_app.signing_secret, timestamp, body)
    assert emulator.rotation.verify_signature(timestamp, body, good)
