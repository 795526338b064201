"""Settings: defaults, per-protocol overrides, auth selection and clear errors."""

from __future__ import annotations

import ssl

import pytest

from connectors.adapters.email.settings import EmailSettings
from connectors.errors import InvalidSetting
from connectors.secrets import Secret


def test_defaults_follow_the_security_mode():
    config = EmailSettings.from_mapping({"smtp_host": "smtp.x", "imap_host": "imap.x"})
    assert config.smtp is not None
    assert (config.smtp.port, config.smtp.security) == (587, "starttls")
    assert config.imap is not None
    assert (config.imap.port, config.imap.security) == (993, "tls")
    tls = EmailSettings.from_mapping({"smtp_host": "s", "smtp_security": "tls"})
    assert tls.smtp is not None
    assert tls.smtp.port == 465
    assert config.smtp.auth == "none"


def test_password_auth_is_chosen_when_a_password_is_set():
    config = EmailSettings.from_mapping(
        {
            "smtp_host": "s",
            "username": "u",
            "password": Secret("p"),
            "imap_host": "i",
            "imap_password": "other",
        }
    )
    assert config.smtp is not None
    assert config.smtp.auth == "plain"
    assert config.imap is not None
    assert config.imap.password is not None
    assert config.imap.password.reveal() == "other"
    assert "other" not in repr(config)


def test_xoauth2_is_chosen_when_an_oauth_credential_is_set():
    config = EmailSettings.from_mapping(
        {"smtp_host": "s", "username": "u", "oauth_credential": "gmail"}
    )
    assert config.smtp is not None
    assert config.smtp.auth == "xoauth2"


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"smtp_host": "s", "smtp_security": "ssl"}, "smtp_security"),
        ({"smtp_host": "s", "smtp_port": 0}, "smtp_port"),
        ({"smtp_host": "s", "smtp_port": "abc"}, "smtp_port"),
        ({"smtp_host": "s", "smtp_auth": "plain"}, "smtp_auth"),
        ({"smtp_host": "s", "smtp_auth": "xoauth2", "username": "u"}, "smtp_auth"),
        ({"smtp_host": "s", "ca_file": "/nonexistent.pem"}, "ca_file"),
        ({"smtp_host": "s", "send_rate": 0}, "send_rate"),
        ({"smtp_host": "s", "verify": "maybe"}, "verify"),
        ({"smtp_host": "s", "database": "sqlite://"}, "database"),
    ],
)
def test_bad_values_name_the_setting(settings, key):
    with pytest.raises(InvalidSetting) as info:
        EmailSettings.from_mapping(settings)
    assert info.value.setting == key


def test_a_password_value_never_appears_in_an_error():
    with pytest.raises(InvalidSetting) as info:
        EmailSettings.from_mapping({"smtp_host": "s", "password": 12345})
    assert "12345" not in str(info.value)


def test_the_tls_context_trusts_a_private_ca_or_nothing_when_verify_is_off(tmp_path):
    from tests.servers.dovecot import make_tls_files

    files = make_tls_files(tmp_path)
    config = EmailSettings.from_mapping({"imap_host": "i", "ca_file": str(files.ca_file)})
    assert config.imap is not None
    context = config.imap.ssl_context()
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    loose = EmailSettings.from_mapping({"imap_host": "i", "verify": False})
    assert loose.imap is not None
    assert loose.imap.ssl_context().verify_mode is ssl.CERT_NONE
