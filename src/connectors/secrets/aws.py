"""``${aws-sm:NAME#KEY}``: AWS Secrets Manager, through ``boto3``.

``NAME`` is the secret's name or ARN. With ``#KEY`` the secret string must be a JSON object and
``KEY`` selects one of its members; without it the whole secret string is the value. boto3 is
synchronous; each read runs in a worker thread.

``name_template="tenants/{tenant}/{path}"`` gives every tenant its own secrets, as for Vault.
Credentials, region and endpoint come from the usual AWS configuration (environment, profile,
instance role) unless a client is passed in.

Requires the ``aws`` extra (``boto3``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from typing import TYPE_CHECKING, Final

from connectors.errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectionFailed,
    ConnectorError,
    CredentialMissing,
    RateLimited,
    ServiceUnavailable,
)
from connectors.secrets.refs import SecretRef
from connectors.secrets.secret import Secret

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

__all__ = ["AwsSecretsManagerResolver"]

_CONNECTOR: Final = "aws-sm"
_MISSING_CODES: Final = frozenset({"ResourceNotFoundException"})
_DENIED_CODES: Final = frozenset({"AccessDeniedException", "AccessDenied"})
_THROTTLE_CODES: Final = frozenset({"ThrottlingException", "TooManyRequestsException"})


class _DropResponseBodies(logging.Filter):
    """Drops botocore's DEBUG records of raw response bodies: they hold secret strings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno <= logging.DEBUG
            and isinstance(record.msg, str)
            and record.msg.startswith("Response body")
        )


_BODY_FILTER: Final = _DropResponseBodies()


def _silence_response_bodies() -> None:
    """botocore logs every response body at DEBUG, secret strings included; filter those out.

    Done when the first client is made (never at import), on ``botocore.parsers`` only; other
    botocore debug logging is untouched.
    """
    logger = logging.getLogger("botocore.parsers")
    if _BODY_FILTER not in logger.filters:
        logger.addFilter(_BODY_FILTER)


class AwsSecretsManagerResolver:
    """Reads secrets from AWS Secrets Manager."""

    scheme = "aws-sm"

    def __init__(
        self,
        *,
        client: SecretsManagerClient | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        name_template: str = "{path}",
        version_stage: str | None = None,
    ) -> None:
        if "{path}" not in name_template:
            raise ConfigurationError(
                "the AWS secret name template must contain {path}",
                hint="use '{path}' or 'tenants/{tenant}/{path}'",
            )
        self._client = client
        self._owns_client = client is None
        _silence_response_bodies()
        self._region_name = region_name
        self._endpoint_url = endpoint_url
        self.name_template = name_template
        self.version_stage = version_stage
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AwsSecretsManagerResolver(region={self._region_name!r})"

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        secret_id = self.name_template.format(tenant=tenant, path=ref.path)
        return await asyncio.to_thread(self._read, secret_id, ref, tenant)

    def close(self) -> None:
        """Close the client's connection pool (if this resolver created the client)."""
        with self._lock:
            if self._client is not None and self._owns_client:
                self._client.close()
                self._client = None

    # --- internals ------------------------------------------------------------------------------

    def _get_client(self) -> SecretsManagerClient:
        with self._lock:
            if self._client is None:
                try:
                    import boto3.session
                except ImportError:  # pragma: no cover - depends on the installation
                    raise ConfigurationError(
                        "aws-sm: references need the boto3 package", hint="install connectors[aws]"
                    ) from None
                session = boto3.session.Session()
                self._client = session.client(
                    "secretsmanager",
                    region_name=self._region_name,
                    endpoint_url=self._endpoint_url,
                )
            return self._client

    def _read(self, secret_id: str, ref: SecretRef, tenant: str) -> Secret:
        client = self._get_client()
        try:
            if self.version_stage is None:
                response = client.get_secret_value(SecretId=secret_id)
            else:
                response = client.get_secret_value(
                    SecretId=secret_id, VersionStage=self.version_stage
                )
        except Exception as exc:
            raise _translate(exc, ref, tenant, secret_id) from None
        text = response.get("SecretString")
        if text is None:
            raise ConfigurationError(
                f"AWS secret {secret_id!r} is binary; only secret strings are supported",
                tenant=tenant,
                connector=_CONNECTOR,
                hint="store it as a SecretString",
            )
        if ref.field is None:
            if not text:
                raise CredentialMissing(ref.text, tenant=tenant, hint=f"{secret_id!r} is empty")
            return Secret(text, name=ref.text)
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise ConfigurationError(
                f"AWS secret {secret_id!r} is not a JSON object, so #{ref.field} selects nothing",
                tenant=tenant,
                connector=_CONNECTOR,
                hint="drop the #KEY to use the whole secret string",
            )
        if ref.field not in document:
            raise CredentialMissing(
                ref.text,
                tenant=tenant,
                hint=f"AWS secret {secret_id!r} has keys {sorted(document)}, not {ref.field!r}",
            )
        value = document[ref.field]
        return Secret(value if isinstance(value, str) else json.dumps(value), name=ref.text)


def _translate(exc: Exception, ref: SecretRef, tenant: str, secret_id: str) -> ConnectorError:
    """Map botocore exceptions to the framework's tree, by error code only."""
    import botocore.exceptions as aws_errors

    if isinstance(exc, aws_errors.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return CredentialMissing(
                ref.text,
                hint=f"no AWS secret named {secret_id!r}",
                provider_code=code,
                tenant=tenant,
                connector=_CONNECTOR,
            )
        if code in _DENIED_CODES:
            return AuthorizationError(
                f"AWS denied reading secret {secret_id!r}",
                hint="grant secretsmanager:GetSecretValue on it",
                provider_code=code,
                tenant=tenant,
                connector=_CONNECTOR,
            )
        if code in _THROTTLE_CODES:
            return RateLimited(
                "AWS Secrets Manager is throttling",
                provider_code=code,
                tenant=tenant,
                connector=_CONNECTOR,
            )
        if code == "DecryptionFailure":
            return ConfigurationError(
                f"AWS cannot decrypt secret {secret_id!r} with its KMS key",
                hint="allow kms:Decrypt on the secret's key",
                provider_code=code,
                tenant=tenant,
                connector=_CONNECTOR,
            )
        if code == "InvalidRequestException":
            return CredentialMissing(
                ref.text,
                hint=f"AWS secret {secret_id!r} cannot be read (scheduled for deletion?)",
                provider_code=code,
                tenant=tenant,
                connector=_CONNECTOR,
            )
        return ServiceUnavailable(
            f"AWS Secrets Manager failed to read {secret_id!r}",
            provider_code=code or None,
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, aws_errors.NoCredentialsError | aws_errors.NoRegionError):
        return ConfigurationError(
            f"AWS is not configured: {type(exc).__name__}",
            hint="set AWS credentials and AWS_DEFAULT_REGION (or pass region_name)",
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, aws_errors.EndpointConnectionError | aws_errors.ConnectionError):
        return ConnectionFailed(
            "cannot connect to AWS Secrets Manager", tenant=tenant, connector=_CONNECTOR
        )
    return ServiceUnavailable(
        f"AWS Secrets Manager read failed: {type(exc).__name__}",
        tenant=tenant,
        connector=_CONNECTOR,
    )
