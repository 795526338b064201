"""Response classification: an HTTP response or a transport failure becomes a typed error.

The classifier is pure (no I/O, no awaits) so every rule is tested without a network. It is
the one place where foreign failures are translated into the tree of :mod:`connectors.errors`;
the retry policy then decides from the error's *type* and ``request_sent`` alone.

Default status table (adapters extend it with rules or by subclassing ``classify_status``)::

    1xx as a final answer          AmbiguousOutcome    (protocol oddity; may have been processed)
    2xx, 3xx                       success (None)
    400, 422                       InvalidRequest
    401                            AuthenticationFailed
    403                            AuthorizationError
    404                            NotFound
    408                            ServiceUnavailable
    409                            Conflict
    429                            RateLimited         (retry_after from Retry-After)
    other 4xx                      PermanentError
    503 + usable Retry-After       RateLimited
    other 5xx                      ServiceUnavailable  (retry_after when Retry-After is usable)

Transport failures::

    ConnectError, ProxyError, PoolTimeout  ConnectionFailed            request_sent=False
    ConnectTimeout                         Timeout(request_sent=False)
    ReadTimeout, WriteTimeout              Timeout(request_sent=True)
    RemoteProtocolError, ReadError,        AmbiguousOutcome            the answer was lost
    WriteError, CloseError, DecodingError
    LocalProtocolError, UnsupportedProtocol,
    InvalidURL                             InvalidRequest              the request is malformed
    TooManyRedirects                       PermanentError

Every error carries ``status`` and, when the ``provider_code`` hook finds one, the provider's
error code. A short excerpt of the body (at most :data:`EXCERPT_CHARS` characters) goes into the
message only after the ``redact`` hook has seen it, so a token echoed in an error body never
reaches an error, a log line or an audit record.
"""

from __future__ import annotations

import copy
import enum
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

import httpx2

from connectors.clock import Clock, system_clock
from connectors.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransientError,
)
from connectors.resilience.retry import parse_retry_after

__all__ = [
    "ACCEPT",
    "EXCERPT_CHARS",
    "Accept",
    "ProviderCodeHook",
    "Redactor",
    "ResponseClassifier",
    "Rule",
    "RuleResult",
]

#: The longest body excerpt an error message may carry.
EXCERPT_CHARS: Final = 200
#: How much of the body the redactor sees (bounded so a huge error page costs little, and wide
#: enough that a token straddling the excerpt's end is still recognised and masked).
_REDACT_WINDOW: Final = 1_000

Redactor = Callable[[str], str]
"""Masks secrets in text (the observability layer supplies one; the default is identity)."""

ProviderCodeHook = Callable[[httpx2.Response], "str | None"]
"""Extracts the provider's own error code (``INVALID_FIELD``, ``ratelimited``) from a response."""


class Accept(enum.Enum):
    """Verdict a rule returns to declare a response a success, skipping the default table."""

    ACCEPT = "accept"


#: Return this from a rule to accept the response (e.g. a 404 on DELETE meaning "already gone").
ACCEPT: Final = Accept.ACCEPT

RuleResult = ConnectorError | Accept | None
"""An error (the response failed), ``ACCEPT`` (it succeeded) or ``None`` (no opinion)."""

Rule = Callable[[httpx2.Response, "ResponseClassifier"], RuleResult]
"""An adapter rule, tried before the default table. It receives the classifier so it can build
errors with :meth:`ResponseClassifier.error` (status, provider code and redacted excerpt filled
in). Rules must not raise; a rule that reads a JSON body should tolerate a non-JSON one."""

E = TypeVar("E", bound=ConnectorError)


def _identity(text: str) -> str:
    return text


class ResponseClassifier:
    """Maps an ``httpx2.Response`` to success (``None``) or a typed error, and transport
    exceptions to typed errors.

    Compose it (``rules=``, :meth:`with_rules`) for provider quirks such as Slack's
    ``200 {"ok": false}``, or subclass and override :meth:`classify_status`. ``clock`` supplies
    the wall time against which an HTTP-date ``Retry-After`` is measured.
    """

    __slots__ = ("_clock", "_provider_code", "_redact", "_rules")

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        redact: Redactor | None = None,
        provider_code: ProviderCodeHook | None = None,
        rules: Sequence[Rule] = (),
    ) -> None:
        self._clock = clock
        self._redact: Redactor = redact or _identity
        self._provider_code = provider_code
        self._rules: tuple[Rule, ...] = tuple(rules)

    def with_rules(self, *rules: Rule) -> ResponseClassifier:
        """A copy with ``rules`` tried first, before this classifier's own rules."""
        clone = self._clone()
        clone._rules = (*rules, *self._rules)
        return clone

    def with_redactor(self, redact: Redactor) -> ResponseClassifier:
        """A copy that masks body excerpts with ``redact`` (how observability plugs in)."""
        clone = self._clone()
        clone._redact = redact
        return clone

    def _clone(self) -> ResponseClassifier:
        return copy.copy(self)

    # --- responses -----------------------------------------------------------------------------

    def classify(self, response: httpx2.Response) -> ConnectorError | None:
        """``None`` when ``response`` is a success, else the typed error to raise."""
        if self._rules:
            for rule in self._rules:
                verdict = rule(response, self)
                if verdict is None:
                    continue
                return None if verdict is ACCEPT else verdict
        status = response.status_code
        if 200 <= status < 400:
            return None
        return self.classify_status(response)

    def classify_status(self, response: httpx2.Response) -> ConnectorError:
        """The default table for a response that is not 2xx/3xx (see the module docstring)."""
        status = response.status_code
        if status == 429:
            return self.error(RateLimited, response, retry_after=self.retry_after(response))
        if status >= 500:
            retry_after = self.retry_after(response)
            if status == 503 and retry_after is not None:
                return self.error(RateLimited, response, retry_after=retry_after)
            return self.error(ServiceUnavailable, response, retry_after=retry_after)
        if status == 408:
            return self.error(ServiceUnavailable, response, retry_after=self.retry_after(response))
        if status == 401:
            return self.error(
                AuthenticationFailed,
                response,
                hint="the provider rejected the credential; check it or connect again",
            )
        if status == 403:
            return self.error(
                AuthorizationError,
                response,
                hint="the credential is valid but may not do this; check its permissions",
            )
        if status == 404:
            return self.error(NotFound, response)
        if status == 409:
            return self.error(Conflict, response)
        if status in (400, 422):
            return self.error(InvalidRequest, response)
        if status >= 400:
            return self.error(PermanentError, response)
        # A 1xx as a final response: the server (or a proxy) broke the protocol after
        # receiving the request, so it may have acted on it.
        return self.error(AmbiguousOutcome, response)

    def retry_after(self, response: httpx2.Response) -> float | None:
        """Seconds from the ``Retry-After`` header (either form), or ``None``."""
        value = response.headers.get("retry-after")
        if value is None:
            return None
        return parse_retry_after(value, self._clock.time())

    def provider_code(self, response: httpx2.Response) -> str | None:
        """The provider's error code via the hook; ``None`` if absent or the hook fails."""
        if self._provider_code is None:
            return None
        try:
            code = self._provider_code(response)
        except Exception:  # a hook parsing an HTML error page must not hide the real error
            return None
        return code if isinstance(code, str) and code else None

    def excerpt(self, response: httpx2.Response) -> str:
        """At most :data:`EXCERPT_CHARS` characters of the body, redacted, on one line.

        Empty when the body was not read (a streamed response) or is empty.
        """
        try:
            raw = response.content
        except httpx2.ResponseNotRead:
            return ""
        if not raw:
            return ""
        encoding = response.charset_encoding or "utf-8"
        try:
            text = raw[: _REDACT_WINDOW * 4].decode(encoding, errors="replace")
        except LookupError:
            text = raw[: _REDACT_WINDOW * 4].decode("utf-8", errors="replace")
        text = " ".join(text[:_REDACT_WINDOW].split())
        text = self._redact(text)
        if len(text) > EXCERPT_CHARS:
            text = text[: EXCERPT_CHARS - 1] + "…"
        return text

    def error(
        self,
        cls: type[E],
        response: httpx2.Response,
        message: str | None = None,
        *,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> E:
        """Build a ``cls`` error for ``response`` with status, provider code and excerpt.

        ``message`` replaces the default ``HTTP <status> <reason>`` lead; the redacted excerpt is
        appended either way. ``retry_after`` applies to the transient family only. ``cls`` must
        take :class:`ConnectorError`'s constructor arguments (every response-level class does).
        """
        status = response.status_code
        lead = message or f"provider answered HTTP {status} {response.reason_phrase}".rstrip()
        excerpt = self.excerpt(response)
        text = f"{lead}: {excerpt}" if excerpt else lead
        err = cls(text, status=status, provider_code=self.provider_code(response), hint=hint)
        if isinstance(err, TransientError):
            err.retry_after = retry_after
        return err

    # --- transport failures --------------------------------------------------------------------

    def classify_exception(self, exc: BaseException) -> ConnectorError | None:
        """The typed error for an httpx2 failure; ``None`` for anything else (re-raise it).

        ``request_sent`` on the result is what makes a non-idempotent retry safe or not: only
        failures that provably happened before the request was written report ``False``.
        """
        if isinstance(exc, httpx2.TimeoutException):
            if isinstance(exc, httpx2.ConnectTimeout):
                return Timeout(
                    self._describe("timed out connecting to the provider", exc), request_sent=False
                )
            if isinstance(exc, httpx2.PoolTimeout):
                return ConnectionFailed(
                    self._describe("no pooled connection became free in time", exc)
                )
            if isinstance(exc, httpx2.WriteTimeout):
                return Timeout(self._describe("timed out sending the request", exc))
            return Timeout(self._describe("timed out waiting for the response", exc))
        if isinstance(exc, httpx2.ConnectError | httpx2.ProxyError):
            return ConnectionFailed(self._describe("could not connect to the provider", exc))
        if isinstance(exc, httpx2.LocalProtocolError | httpx2.UnsupportedProtocol):
            return InvalidRequest(self._describe("the request cannot be sent", exc))
        if isinstance(exc, httpx2.TooManyRedirects):
            return PermanentError(self._describe("too many redirects", exc))
        if isinstance(exc, httpx2.RemoteProtocolError | httpx2.ReadError):
            return AmbiguousOutcome(
                self._describe("the connection dropped before the answer arrived", exc)
            )
        if isinstance(exc, httpx2.RequestError):
            # WriteError, CloseError, DecodingError and anything newer: the request may have
            # been processed, so only an idempotent operation may try again.
            return AmbiguousOutcome(self._describe("the exchange failed mid-way", exc))
        if isinstance(exc, httpx2.InvalidURL):
            return InvalidRequest(self._describe("the URL is invalid", exc))
        return None

    def _describe(self, lead: str, exc: BaseException) -> str:
        detail = " ".join(self._redact(str(exc)[:_REDACT_WINDOW]).split())
        if len(detail) > EXCERPT_CHARS:
            detail = detail[: EXCERPT_CHARS - 1] + "…"
        kind = type(exc).__name__
        return f"{lead} ({kind}: {detail})" if detail else f"{lead} ({kind})"
