"""SMTP and IMAP failures as typed errors, by phase: what may be retried and what may not."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest
from imapclient import exceptions as imap_errors

from connectors.adapters.email.classify import imap_error, smtp_error, smtp_reply_error
from connectors.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransientError,
)

ADDRESS = "smtp.example.test:587"


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (421, RateLimited),
        (450, RateLimited),
        (451, RateLimited),
        (452, RateLimited),
        (454, ServiceUnavailable),
        (530, AuthenticationFailed),
        (534, AuthenticationFailed),
        (535, AuthenticationFailed),
        (550, InvalidRequest),
        (552, InvalidRequest),
        (554, InvalidRequest),
    ],
)
def test_reply_codes_map_to_what_the_caller_should_do(code, kind):
    error = smtp_reply_error(code, "text", what="the message")
    assert type(error) is kind
    assert error.provider_code == str(code)
    if isinstance(error, TransientError):
        assert error.request_sent is False  # an explicit refusal: nothing was accepted


def test_losing_the_connection_after_the_body_is_ambiguous():
    error = smtp_error(aiosmtplib.SMTPServerDisconnected("gone"), "body", ADDRESS)
    assert isinstance(error, AmbiguousOutcome)
    assert error.request_sent is True


def test_a_timeout_after_the_body_may_have_been_accepted():
    error = smtp_error(aiosmtplib.SMTPReadTimeoutError("slow"), "body", ADDRESS)
    assert isinstance(error, Timeout)
    assert error.request_sent is True


@pytest.mark.parametrize("phase", ["connect", "auth", "envelope", "data"])
def test_losing_the_connection_before_the_body_is_safe_to_retry(phase):
    error = smtp_error(aiosmtplib.SMTPServerDisconnected("gone"), phase, ADDRESS)
    assert isinstance(error, ConnectionFailed)
    assert error.request_sent is False
    timeout = smtp_error(aiosmtplib.SMTPReadTimeoutError("slow"), phase, ADDRESS)
    assert isinstance(timeout, Timeout)
    assert timeout.request_sent is False


def test_a_refused_connection_is_connection_failed():
    cause = ConnectionRefusedError(111, "refused")
    error = aiosmtplib.SMTPConnectError("Error connecting")
    error.__cause__ = cause
    assert isinstance(smtp_error(error, "connect", ADDRESS), ConnectionFailed)


def test_certificate_failures_are_configuration_errors_with_a_hint():
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
    cause.verify_message = "self-signed certificate"
    error = aiosmtplib.SMTPConnectError("Error connecting")
    error.__cause__ = cause
    mapped = smtp_error(error, "connect", ADDRESS)
    assert isinstance(mapped, ConfigurationError)
    assert mapped.provider_code == "tls_verify"
    assert "self-signed" in mapped.message


def test_a_missing_starttls_is_a_configuration_error():
    error = aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server.")
    assert isinstance(smtp_error(error, "connect", ADDRESS), ConfigurationError)


def test_imap_login_refusals_are_authentication_errors():
    privacy = imap_errors.LoginError("b'[PRIVACYREQUIRED] Plaintext authentication disallowed'")
    mapped = imap_error(privacy, "login", "imap:143")
    assert isinstance(mapped, AuthenticationFailed)
    assert mapped.provider_code == "PRIVACYREQUIRED"
    wrong = imap_error(imap_errors.LoginError("[AUTHENTICATIONFAILED]"), "login", "imap:143")
    assert wrong.provider_code == "AUTHENTICATIONFAILED"


def test_an_imap_abort_is_ambiguous_mid_command_but_a_connect_failure_before():
    abort = imap_errors.IMAPClientAbortError("socket error: EOF")
    assert isinstance(imap_error(abort, "command", "imap:993"), AmbiguousOutcome)
    assert isinstance(imap_error(abort, "connect", "imap:993"), ConnectionFailed)
    assert isinstance(imap_error(TimeoutError(), "connect", "imap:993"), Timeout)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("select failed: [NONEXISTENT] Mailbox doesn't exist: Nope", NotFound),
        ("[TRYCREATE] Mailbox doesn't exist", NotFound),
        ("[UNAVAILABLE] Temporary failure", ServiceUnavailable),
        ("[LIMIT] Too many commands", RateLimited),
        ("UID MOVE: BAD Error in IMAP command", InvalidRequest),
    ],
)
def test_imap_no_and_bad_responses_use_their_response_codes(text, kind):
    assert isinstance(imap_error(imap_errors.IMAPClientError(text), "command", "imap"), kind)
