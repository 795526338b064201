"""The exception tree: one root, split by what the caller should do.

::

    ConnectorError                      (root; never raised itself)
    ├── ConfigurationError              fix the configuration, then retry
    │   ├── InvalidSetting              a setting/environment variable is out of range
    │   ├── DefinitionError             a YAML definition or workflow is malformed
    │   ├── UnknownConnector            no adapter by that name (with suggestions)
    │   ├── IncompatibleVersion         adapter/provider/schema version mismatch
    │   ├── LifecycleError              the connector is used in the wrong state
    │   └── CredentialIntegrityError    a stored ciphertext fails its integrity check
    ├── AuthError                       re-authenticate or change permissions
    │   ├── AuthenticationFailed        credentials rejected by the provider
    │   │   └── ReauthorizationRequired refresh token revoked/expired: a human must re-connect
    │   ├── CredentialMissing           no credential for this tenant and reference
    │   └── AuthorizationError          the actor or credential may not do this
    │       ├── AccessDenied            the actor's role does not allow it
    │       └── ScopeDenied             the credential lacks OAuth scopes
    ├── TransientError                  retry later (the framework already did, within budget)
    │   ├── RateLimited                 quota or rate exhausted; carries ``retry_after``
    │   ├── ServiceUnavailable          5xx / 408 / maintenance
    │   ├── ConnectionFailed            could not connect: the request never left
    │   ├── Timeout                     the attempt timed out
    │   └── AmbiguousOutcome            the request may have been processed (not retried
    │                                   for non-idempotent operations)
    ├── CircuitOpen                     the provider is failing; fail fast until ``retry_after``
    ├── BulkheadFull                    too many concurrent calls queued locally
    ├── PermanentError                  give up: the request itself is wrong
    │   ├── NotFound
    │   ├── Conflict                    (``candidates`` for ambiguous upserts)
    │   ├── InvalidRequest              with per-field ``fields`` details
    │   └── BlockedDestination          an SSRF guard refused the URL
    └── DeadlineExceeded                the caller's overall deadline passed

Every error carries the connector, tenant, operation, request id and the provider's error code
when known, and never a secret: messages are built from identifiers, status codes and
provider error codes only (provider bodies are excerpted only after redaction).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, TypedDict

from typing_extensions import Unpack

__all__ = [
    "AccessDenied",
    "AmbiguousOutcome",
    "AuthError",
    "AuthenticationFailed",
    "AuthorizationError",
    "BlockedDestination",
    "BulkheadFull",
    "CircuitOpen",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "ConnectorError",
    "CredentialIntegrityError",
    "CredentialMissing",
    "DeadlineExceeded",
    "DefinitionError",
    "FieldError",
    "IncompatibleVersion",
    "InvalidRequest",
    "InvalidSetting",
    "LifecycleError",
    "NotFound",
    "PermanentError",
    "RateLimited",
    "ReauthorizationRequired",
    "ScopeDenied",
    "ServiceUnavailable",
    "Timeout",
    "TransientError",
    "UnknownConnector",
]


class ErrorFields(TypedDict, total=False):
    """The identifying keywords every error accepts."""

    connector: str | None
    tenant: str | None
    operation: str | None
    request_id: str | None
    provider_code: str | None
    status: int | None
    hint: str | None


@dataclass(frozen=True, slots=True)
class FieldError:
    """One field-level problem reported by a provider (or by local validation)."""

    field: str
    message: str
    code: str | None = None


class ConnectorError(Exception):
    """Root of every error the framework raises.

    ``str(error)`` is the actionable message followed by the identifying context, e.g.
    ``Salesforce rejected the record: REQUIRED_FIELD_MISSING [connector=salesforce
    tenant=acme-corp operation=create request_id=7f3c...]``.
    """

    #: What the caller should do, for logs, metrics and the dashboard.
    action: ClassVar[str] = "inspect the error"
    #: Whether a retry of the same call may succeed later.
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        connector: str | None = None,
        tenant: str | None = None,
        operation: str | None = None,
        request_id: str | None = None,
        provider_code: str | None = None,
        status: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.connector = connector
        self.tenant = tenant
        self.operation = operation
        self.request_id = request_id
        self.provider_code = provider_code
        self.status = status
        self.hint = hint

    @property
    def code(self) -> str:
        """A stable machine-readable name: the provider's code, else the class name."""
        return self.provider_code or type(self).__name__

    def with_context(
        self,
        *,
        connector: str | None = None,
        tenant: str | None = None,
        operation: str | None = None,
        request_id: str | None = None,
    ) -> ConnectorError:
        """Fill in context fields that are still empty; returns ``self`` for chaining."""
        self.connector = self.connector or connector
        self.tenant = self.tenant or tenant
        self.operation = self.operation or operation
        self.request_id = self.request_id or request_id
        return self

    def context(self) -> dict[str, str | int | None]:
        """The identifying fields, for logs and audit records."""
        return {
            "connector": self.connector,
            "tenant": self.tenant,
            "operation": self.operation,
            "request_id": self.request_id,
            "provider_code": self.provider_code,
            "status": self.status,
        }

    def __str__(self) -> str:
        parts = [self.message]
        if self.hint:
            parts.append(f"Hint: {self.hint}")
        ctx = " ".join(
            f"{k}={v}"
            for k, v in (
                ("connector", self.connector),
                ("tenant", self.tenant),
                ("operation", self.operation),
                ("request_id", self.request_id),
                ("code", self.provider_code),
                ("status", self.status),
            )
            if v is not None
        )
        if ctx:
            parts.append(f"[{ctx}]")
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep errors picklable across process boundaries (job runners) with their context.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def _rebuild(cls: type[ConnectorError], message: str, state: dict[str, object]) -> ConnectorError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


# --- configuration -----------------------------------------------------------------------------


class ConfigurationError(ConnectorError):
    """The configuration is wrong; nothing will work until it is fixed."""

    action = "fix the configuration"


class InvalidSetting(ConfigurationError):
    """A setting or ``CONNECTOR_*`` environment variable has an invalid value."""

    def __init__(self, name: str, value: object, accepted: str, **kw: Unpack[ErrorFields]) -> None:
        shown = value if not _looks_secret_name(name) else "<hidden>"
        super().__init__(f"invalid value {shown!r} for {name}: expected {accepted}", **kw)
        self.setting = name
        self.accepted = accepted


def _looks_secret_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in ("key", "secret", "token", "password"))


class DefinitionError(ConfigurationError):
    """A YAML definition or workflow is malformed; names ``file:line:col``."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        hint: str | None = None,
    ) -> None:
        location = ""
        if file is not None:
            location = file
            if line is not None:
                location += f":{line}"
                if column is not None:
                    location += f":{column}"
            location += ": "
        super().__init__(f"{location}{message}", hint=hint)
        self.file = file
        self.line = line
        self.column = column


class UnknownConnector(ConfigurationError):
    """No adapter or definition is registered under the requested name."""

    def __init__(self, name: str, known: Sequence[str], suggestions: Sequence[str] = ()) -> None:
        message = f"unknown connector {name!r}"
        hint = None
        if suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in suggestions) + "?"
        message += f"; known connectors: {', '.join(sorted(known)) or '(none)'}"
        super().__init__(message, connector=name, hint=hint)
        self.name = name
        self.known = tuple(known)
        self.suggestions = tuple(suggestions)


class IncompatibleVersion(ConfigurationError):
    """An adapter, provider API or schema version does not satisfy what is required."""


class LifecycleError(ConfigurationError):
    """A connector was used in a lifecycle state that does not allow the call."""


class CredentialIntegrityError(ConfigurationError):
    """A stored credential or data key fails its authentication tag: it was moved to another
    tenant or name, tampered with, or the master key under its id changed. Alert on this."""

    action = "restore the credential from a trusted source and investigate"


# --- authentication and authorisation -----------------------------------------------------------


class AuthError(ConnectorError):
    """Authentication or authorisation failed."""

    action = "re-authenticate or change permissions"


class AuthenticationFailed(AuthError):
    """The provider rejected the credentials."""


class ReauthorizationRequired(AuthenticationFailed):
    """The grant is gone (``invalid_grant``, revoked token): a human must connect again."""

    action = "re-authorise the connection"


class CredentialMissing(AuthError):
    """No credential resolves for this tenant and reference. Names both, never a value."""

    action = "store the credential for this tenant"

    def __init__(self, reference: str, **kw: Unpack[ErrorFields]) -> None:
        tenant = kw.get("tenant")
        where = f" for tenant {tenant!r}" if tenant else ""
        kw.setdefault("hint", "store it with `connectors credentials set` or fix the reference")
        super().__init__(f"credential {reference!r} is not set{where}", **kw)
        self.reference = reference


class AuthorizationError(AuthError):
    """The actor or the credential is not allowed to do this."""


class AccessDenied(AuthorizationError):
    """The actor's role in the tenant does not permit the action."""

    action = "ask a tenant admin for a role that allows it"

    def __init__(
        self,
        message: str,
        *,
        actor: str | None = None,
        permission: str | None = None,
        needed_role: str | None = None,
        **kw: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **kw)
        self.actor = actor
        self.permission = permission
        self.needed_role = needed_role


class ScopeDenied(AuthorizationError):
    """The credential was not granted the OAuth scopes the operation needs."""

    action = "re-connect with the missing scopes"

    def __init__(
        self,
        message: str,
        *,
        needed: Sequence[str] = (),
        provided: Sequence[str] = (),
        **kw: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **kw)
        self.needed = tuple(needed)
        self.provided = tuple(provided)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(s for s in self.needed if s not in self.provided)


# --- transient ---------------------------------------------------------------------------------


class TransientError(ConnectorError):
    """Retry later: the failure is expected to go away."""

    action = "retry later"
    retryable = True

    def __init__(
        self, message: str, *, retry_after: float | None = None, **kw: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        #: Seconds the provider asked us to wait, if it said.
        self.retry_after = retry_after
        #: True when the request provably never reached the server (safe to retry any operation).
        self.request_sent = True


class RateLimited(TransientError):
    """A rate limit or quota is exhausted. ``retry_after`` says for how long, when known."""

    def __init__(
        self,
        message: str = "rate limited",
        *,
        retry_after: float | None = None,
        quota: str | None = None,
        **kw: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, retry_after=retry_after, **kw)
        self.quota = quota


class ServiceUnavailable(TransientError):
    """The provider answered with a server error or is temporarily down."""


class ConnectionFailed(TransientError):
    """The connection could not be made: the request never left, so any operation may retry."""

    def __init__(self, message: str, **kw: Unpack[ErrorFields]) -> None:
        super().__init__(message, **kw)
        self.request_sent = False


class Timeout(TransientError):
    """An attempt timed out. ``request_sent`` tells whether the request may have been processed."""

    def __init__(
        self, message: str, *, request_sent: bool = True, **kw: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.request_sent = request_sent


class AmbiguousOutcome(TransientError):
    """The request was sent and the answer was lost: it may or may not have been processed."""


# --- fail fast ---------------------------------------------------------------------------------


class CircuitOpen(ConnectorError):
    """The circuit breaker is open: calls fail fast until ``retry_after`` seconds pass."""

    action = "wait for the provider to recover"
    retryable = True

    def __init__(
        self,
        message: str = "circuit open",
        *,
        retry_after: float | None = None,
        **kw: Unpack[ErrorFields],
    ) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class BulkheadFull(ConnectorError):
    """Too many calls are in flight and queued for this connector; the call was rejected."""

    action = "reduce concurrency or raise the bulkhead limit"
    retryable = True


# --- permanent ---------------------------------------------------------------------------------


class PermanentError(ConnectorError):
    """The request itself is wrong: retrying the same call cannot succeed."""

    action = "fix the request"


class NotFound(PermanentError):
    """The target does not exist."""


class Conflict(PermanentError):
    """The request conflicts with the target's state (duplicate, ambiguous upsert, version)."""

    def __init__(
        self, message: str, *, candidates: Sequence[str] = (), **kw: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.candidates = tuple(candidates)


class InvalidRequest(PermanentError):
    """The provider (or local validation) rejected the request, with per-field details."""

    def __init__(
        self, message: str, *, fields: Sequence[FieldError] = (), **kw: Unpack[ErrorFields]
    ) -> None:
        super().__init__(message, **kw)
        self.fields = tuple(fields)

    def __str__(self) -> str:
        base = super().__str__()
        if not self.fields:
            return base
        details = "; ".join(f"{f.field}: {f.message}" for f in self.fields)
        return f"{base} (fields: {details})"


class BlockedDestination(PermanentError):
    """The SSRF guard refused a URL: it resolves to a private, loopback or metadata address."""

    action = "use a public address or allow it explicitly in the definition"


# --- deadline ----------------------------------------------------------------------------------


class DeadlineExceeded(ConnectorError):
    """The call's overall deadline passed (or would pass before the next attempt could finish)."""

    action = "raise the deadline or retry later"
    retryable = True

    def __init__(self, message: str = "deadline exceeded", **kw: Unpack[ErrorFields]) -> None:
        super().__init__(message, **kw)


def field_errors(items: Mapping[str, str]) -> tuple[FieldError, ...]:
    """Build ``FieldError`` tuples from a plain mapping (convenience for adapters)."""
    return tuple(FieldError(field=k, message=v) for k, v in items.items())


__all__ += ["field_errors"]
