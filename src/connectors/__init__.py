"""Connector Framework: call external systems safely, for many tenants at once.

::

    import connectors

    sf = connectors.get_connector("salesforce", tenant_id="acme-corp")
    contacts = sf.query("SELECT Id, Name, Email FROM Contact LIMIT 10")

    async with connectors.open_connector("salesforce", tenant_id="acme-corp") as sf:
        async for record in sf.query_iter("SELECT Id, Email FROM Contact"):
            ...
"""

from __future__ import annotations

from connectors.api import get_connector, open_connector
from connectors.base import Connector, ConnectorRuntime, OperationInfo, operation
from connectors.context import CallContext, Deadline
from connectors.errors import (
    AccessDenied,
    AmbiguousOutcome,
    AuthenticationFailed,
    AuthError,
    AuthorizationError,
    BlockedDestination,
    BulkheadFull,
    CircuitOpen,
    ConfigurationError,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    CredentialMissing,
    DeadlineExceeded,
    DefinitionError,
    FieldError,
    IncompatibleVersion,
    InvalidRequest,
    InvalidSetting,
    LifecycleError,
    NotFound,
    PermanentError,
    RateLimited,
    ReauthorizationRequired,
    ScopeDenied,
    ServiceUnavailable,
    Timeout,
    TransientError,
    UnknownConnector,
)
from connectors.hub import Hub
from connectors.lifecycle import State
from connectors.secrets import Secret
from connectors.sync import SyncConnector

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AmbiguousOutcome",
    "AuthError",
    "AuthenticationFailed",
    "AuthorizationError",
    "BlockedDestination",
    "BulkheadFull",
    "CallContext",
    "CircuitOpen",
    "ConfigurationError",
    "Conflict",
    "ConnectionFailed",
    "Connector",
    "ConnectorError",
    "ConnectorRuntime",
    "CredentialMissing",
    "Deadline",
    "DeadlineExceeded",
    "DefinitionError",
    "FieldError",
    "Hub",
    "IncompatibleVersion",
    "InvalidRequest",
    "InvalidSetting",
    "LifecycleError",
    "NotFound",
    "OperationInfo",
    "PermanentError",
    "RateLimited",
    "ReauthorizationRequired",
    "ScopeDenied",
    "Secret",
    "ServiceUnavailable",
    "State",
    "SyncConnector",
    "Timeout",
    "TransientError",
    "UnknownConnector",
    "__version__",
    "get_connector",
    "open_connector",
    "operation",
]
