"""IMAP sessions and logins against a real Dovecot: passwords, refused plaintext, STARTTLS,
implicit TLS, certificate checks, XOAUTH2 through Dovecot's oauth2 passdb, session reuse."""

from __future__ import annotations

import asyncio

import pytest

from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager, TokenSet
from connectors.errors import AuthenticationFailed, ConfigurationError
from connectors.secrets import Secret
from tests.adapters.email.support import RecordingAudit, new_mailbox, open_email, settings_for

pytestmark = pytest.mark.server


def list_folders(settings, **kwargs):
    async def main():
        async with open_email(settings, **kwargs) as mail:
            return await mail.list_folders()

    return asyncio.run(main())


def test_a_wrong_password_is_authentication_failed_and_not_retried(dovecot, no_waits):
    box = new_mailbox(dovecot)
    audit = RecordingAudit()
    settings = settings_for(box, dovecot=dovecot, password=Secret("wrong-password"))
    with pytest.raises(AuthenticationFailed) as info:
        list_folders(settings, audit=audit)
    assert info.value.provider_code == "AUTHENTICATIONFAILED"
    assert audit.events[0].attempts == 1
    assert "wrong-password" not in str(info.value)


def test_a_plaintext_login_on_an_insecure_connection_is_refused_without_the_password(
    dovecot, no_waits
):
    box = new_mailbox(dovecot)
    settings = settings_for(
        box,
        dovecot=dovecot,
        imap_host=dovecot.insecure_host,
        imap_port=dovecot.imap_insecure_port,
        imap_security="none",
    )
    with pytest.raises(AuthenticationFailed) as info:
        list_folders(settings)
    assert info.value.provider_code == "PRIVACYREQUIRED"
    assert "starttls" in (info.value.hint or "")
    assert box.user not in dovecot.log()  # no LOGIN attempt reached the server


def test_starttls_upgrades_the_insecure_connection_and_logs_in(dovecot):
    box = new_mailbox(dovecot)
    settings = settings_for(
        box,
        dovecot=dovecot,
        imap_host=dovecot.insecure_host,
        imap_port=dovecot.imap_insecure_port,
        imap_security="starttls",
    )
    assert any(f.name == "INBOX" for f in list_folders(settings))


def test_implicit_tls_with_the_private_ca(dovecot):
    box = new_mailbox(dovecot)
    settings = settings_for(box, dovecot=dovecot, imap_port=dovecot.imaps_port, imap_security="tls")
    assert any(f.name == "INBOX" for f in list_folders(settings))


def test_an_untrusted_certificate_is_a_configuration_error(dovecot, no_waits):
    box = new_mailbox(dovecot)
    settings = settings_for(box, dovecot=dovecot, imap_port=dovecot.imaps_port, imap_security="tls")
    del settings["ca_file"]
    with pytest.raises(ConfigurationError) as info:
        list_folders(settings)
    assert info.value.provider_code == "tls_verify"
    assert "ca_file" in (info.value.hint or "")


def test_verify_false_accepts_a_self_signed_certificate(dovecot):
    box = new_mailbox(dovecot)
    settings = settings_for(
        box, dovecot=dovecot, imap_port=dovecot.imaps_port, imap_security="tls", verify=False
    )
    del settings["ca_file"]
    assert list_folders(settings)


def test_xoauth2_login_is_validated_by_dovecot(dovecot):
    box = new_mailbox(dovecot)
    dovecot.grant_token("imap-token-1", box.user)
    settings = settings_for(box, dovecot=dovecot, access_token=Secret("imap-token-1"))
    del settings["password"]
    requests_before = dovecot.introspection.requests
    assert list_folders(settings)
    assert dovecot.introspection.requests > requests_before


def test_a_rejected_xoauth2_token_is_refreshed_once_then_used(dovecot, no_waits):
    box = new_mailbox(dovecot)
    dovecot.grant_token("imap-fresh", box.user)
    calls: list[str] = []

    class Grant:
        async def obtain(self, current):
            calls.append("refresh")
            return TokenSet(access_token=Secret("imap-fresh"))

    async def main():
        tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider())
        await tokens.install("acme", "mail", TokenSet(access_token=Secret("imap-expired")))
        tokens.register("acme", "mail", Grant())
        settings = settings_for(box, dovecot=dovecot, oauth_credential="mail")
        del settings["password"]
        async with open_email(settings, tokens=tokens) as mail:
            return await mail.list_folders()

    assert asyncio.run(main())
    assert calls == ["refresh"]


def test_sessions_are_reused_across_operations(dovecot):
    box = new_mailbox(dovecot)

    async def main():
        async with open_email(settings_for(box, dovecot=dovecot)) as mail:
            for _ in range(5):
                await mail.search("INBOX")
            return mail._imap.opened

    assert asyncio.run(main()) == 1
