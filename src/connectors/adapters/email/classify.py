"""SMTP and IMAP failures translated into the framework's typed errors, once, at the edge.

The key question for a send is *could the server have accepted the message?*

- everything before the message body went out (connect, TLS, AUTH, ``MAIL``, ``RCPT``, the
  ``DATA`` command up to its ``354``) cannot have delivered it: those failures are marked
  ``request_sent = False`` so the pipeline retries them even for a non-idempotent send;
- an explicit 4xx/5xx reply after the body is a definite "not accepted": also not sent;
- a lost connection or a timeout *after* the body was written is an
  :class:`~connectors.errors.AmbiguousOutcome`: the server may have queued the message, so a send
  is not retried unless the caller asked for it (``retry_ambiguous=True``).

Reply codes: 421/451/452 (and 450) are throttling or temporary trouble → :class:`RateLimited`;
other 4xx → :class:`ServiceUnavailable`; 530/534/535/538 → :class:`AuthenticationFailed`;
other 5xx → :class:`InvalidRequest` (a permanent "no"). Server texts are kept short and never
contain credentials (we never send any in a way a server would echo).
"""

from __future__ import annotations

import socket
import ssl
from typing import Final, Literal, TypeAlias

import aiosmtplib
from imapclient import exceptions as imap_errors

from connectors.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    ConnectorError,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransientError,
)

__all__ = [
    "ImapPhase",
    "SmtpPhase",
    "imap_error",
    "not_sent",
    "smtp_error",
    "smtp_reply_error",
]

SmtpPhase: TypeAlias = Literal["connect", "auth", "envelope", "data", "body"]
ImapPhase: TypeAlias = Literal["connect", "login", "command"]

_THROTTLE: Final = frozenset({421, 450, 451, 452})
_AUTH: Final = frozenset({530, 534, 535, 538})
_TEXT_LIMIT: Final = 200


def not_sent(error: ConnectorError) -> ConnectorError:
    """Mark a transient error as "the request provably did not take effect" (safe to retry)."""
    if isinstance(error, TransientError):
        error.request_sent = False
    return error


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _TEXT_LIMIT else text[: _TEXT_LIMIT - 1] + "…"


def smtp_reply_error(code: int, message: str, *, what: str) -> ConnectorError:
    """The error for an SMTP reply ``code`` that refused ``what`` (an explicit "no")."""
    text = f"the SMTP server refused {what}: {code} {_short(message)}"
    provider_code = str(code)
    error: ConnectorError
    if code in _THROTTLE:
        error = RateLimited(text, provider_code=provider_code, quota="smtp")
    elif 400 <= code < 500:
        error = ServiceUnavailable(text, provider_code=provider_code)
    elif code in _AUTH:
        error = AuthenticationFailed(
            text,
            provider_code=provider_code,
            hint="check the username and password, or the OAuth token and its scopes",
        )
    elif code == 552:
        error = InvalidRequest(
            text, provider_code=provider_code, hint="the message is too large for the server"
        )
    else:
        error = InvalidRequest(text, provider_code=provider_code)
    return not_sent(error)


def _tls_verify_failure(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _tls_config_error(address: str, cause: ssl.SSLCertVerificationError) -> ConfigurationError:
    return ConfigurationError(
        f"TLS certificate verification failed for {address}: {cause.verify_message}",
        provider_code="tls_verify",
        hint="set ca_file to the server's CA certificate (or verify: false for a test server)",
    )


def smtp_error(exc: BaseException, phase: SmtpPhase, address: str) -> ConnectorError:
    """Translate an aiosmtplib/OS exception raised during ``phase`` of talking to ``address``."""
    if isinstance(exc, ConnectorError):
        return exc
    tls = _tls_verify_failure(exc)
    if tls is not None:
        return _tls_config_error(address, tls)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return smtp_reply_error(exc.code, exc.message, what="the login")
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return not_sent(
            ServiceUnavailable(
                f"the SMTP server at {address} greeted with {exc.code} {_short(exc.message)}",
                provider_code=str(exc.code),
            )
        )
    if phase == "body":
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            return smtp_reply_error(exc.code, exc.message, what="the message")
        if isinstance(exc, TimeoutError):
            return Timeout(
                f"no reply from {address} after the message body was sent; it may have been "
                "accepted",
                request_sent=True,
            )
        return AmbiguousOutcome(
            f"the connection to {address} was lost after the message body was sent; the "
            "message may or may not have been accepted",
            hint="check the recipient mailbox (by Message-ID) before sending again",
        )
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return smtp_reply_error(exc.code, exc.message, what=_what(phase))
    if isinstance(exc, aiosmtplib.SMTPNotSupported) or (
        isinstance(exc, aiosmtplib.SMTPException) and "STARTTLS" in str(exc)
    ):
        return ConfigurationError(
            f"the SMTP server at {address} does not support {exc}",
            hint="check smtp_security (starttls, tls or none) and smtp_port",
        )
    if isinstance(exc, aiosmtplib.SMTPException) and "AUTH" in str(exc):
        return AuthenticationFailed(
            f"the SMTP server at {address} offers no AUTH on this connection",
            provider_code="auth_unavailable",
            hint="use smtp_security starttls or tls: servers hide AUTH on plaintext connections",
        )
    if isinstance(exc, TimeoutError):
        return not_sent(
            Timeout(f"timed out talking to {address} during {phase}", request_sent=False)
        )
    if isinstance(exc, OSError | aiosmtplib.SMTPException | ssl.SSLError):
        return ConnectionFailed(
            f"could not talk to the SMTP server at {address}: {_short(str(exc))}"
        )
    return ConnectionFailed(f"unexpected SMTP failure with {address}: {type(exc).__name__}")


def _what(phase: SmtpPhase) -> str:
    return {
        "connect": "the connection",
        "auth": "the login",
        "envelope": "the envelope",
        "data": "the DATA command",
        "body": "the message",
    }[phase]


# --- IMAP ----------------------------------------------------------------------------------------

_NOT_FOUND: Final = ("[NONEXISTENT]", "[TRYCREATE]", "MAILBOX DOESN'T EXIST", "NO SUCH MAILBOX")
_UNAVAILABLE: Final = ("[UNAVAILABLE]", "[INUSE]", "[SERVERBUG]")


def imap_error(exc: BaseException, phase: ImapPhase, address: str) -> ConnectorError:
    """Translate an IMAPClient/imaplib/OS exception raised during ``phase``."""
    if isinstance(exc, ConnectorError):
        return exc
    tls = _tls_verify_failure(exc)
    if tls is not None:
        return _tls_config_error(address, tls)
    text = _short(_decode(exc))
    upper = text.upper()
    if isinstance(exc, imap_errors.LoginError):
        if "PRIVACYREQUIRED" in upper or "LOGINDISABLED" in upper:
            return AuthenticationFailed(
                f"the IMAP server at {address} refuses a plaintext login: {text}",
                provider_code="PRIVACYREQUIRED",
                hint="use imap_security: starttls or tls",
            )
        return AuthenticationFailed(
            f"the IMAP server at {address} rejected the login: {text}",
            provider_code="AUTHENTICATIONFAILED",
            hint="check the username and password, or the OAuth token and its scopes",
        )
    if isinstance(exc, socket.timeout | TimeoutError):
        return Timeout(
            f"timed out talking to the IMAP server at {address} during {phase}",
            request_sent=phase == "command",
        )
    if isinstance(exc, imap_errors.IMAPClientAbortError | OSError | EOFError):
        if phase == "command":
            return AmbiguousOutcome(
                f"the connection to the IMAP server at {address} broke during a command: {text}"
            )
        return ConnectionFailed(f"could not connect to the IMAP server at {address}: {text}")
    if isinstance(exc, imap_errors.CapabilityError):
        return ConfigurationError(f"the IMAP server at {address} lacks a needed capability: {text}")
    if isinstance(exc, imap_errors.IMAPClientError):
        if any(marker in upper for marker in _NOT_FOUND):
            return NotFound(f"IMAP: {text}", provider_code="NONEXISTENT")
        if any(marker in upper for marker in _UNAVAILABLE):
            return ServiceUnavailable(f"IMAP server busy: {text}", provider_code="UNAVAILABLE")
        if "[LIMIT]" in upper:
            return RateLimited(f"IMAP: {text}", provider_code="LIMIT", quota="imap")
        if phase != "command":
            return ConnectionFailed(f"the IMAP server at {address} refused the session: {text}")
        return InvalidRequest(f"the IMAP server at {address} refused the command: {text}")
    return ConnectionFailed(f"unexpected IMAP failure with {address}: {type(exc).__name__}")


def _decode(exc: BaseException) -> str:
    parts: list[str] = []
    for arg in exc.args:
        parts.append(arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg))
    return " ".join(parts) or type(exc).__name__
