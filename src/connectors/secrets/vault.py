"""``${vault:PATH#KEY}``: HashiCorp Vault KV version 2, through ``hvac``.

``PATH`` is relative to the KV mount (``secret`` by default) and ``KEY`` picks one key of the
secret's data. hvac is synchronous; each read runs in a worker thread. The Vault token is a
:class:`~connectors.secrets.secret.Secret` and is revealed only to hand it to the client.

A definition is tenant-agnostic, so ``${vault:slack#signing_secret}`` names the same secret for
every tenant (a platform secret). To give every tenant its own Vault secrets, set
``path_template="tenants/{tenant}/{path}"``: the calling tenant is then part of every path, and
``.``/``..`` segments are refused so that a reference cannot climb out of it.

Requires the ``vault`` extra (``hvac``).
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any, Final

from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    ConfigurationError,
    ConnectionFailed,
    ConnectorError,
    CredentialMissing,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from connectors.secrets.refs import MalformedReference, SecretRef
from connectors.secrets.secret import Secret

__all__ = ["VaultResolver"]

_CONNECTOR: Final = "vault"


class VaultResolver:
    """Reads KV v2 secrets from Vault at ``url`` with ``token`` (optionally in ``namespace``)."""

    scheme = "vault"

    def __init__(
        self,
        url: str,
        token: Secret,
        *,
        mount: str = "secret",
        namespace: str | None = None,
        path_template: str = "{path}",
        timeout: float = 10.0,
        verify: bool | str = True,
    ) -> None:
        if "{path}" not in path_template:
            raise ConfigurationError(
                "the Vault path template must contain {path}",
                hint="use '{path}' or 'tenants/{tenant}/{path}'",
            )
        if not isinstance(token, Secret):
            raise ConfigurationError(
                "the Vault token must be a Secret", hint="wrap it: Secret(token, name='vault')"
            )
        self.url = url
        self.mount = mount.strip("/")
        self.namespace = namespace
        self.path_template = path_template
        self._token = token
        self._timeout = timeout
        self._verify = verify
        self._client: Any = None  # hvac ships no type information
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VaultResolver(url={self.url!r}, mount={self.mount!r}, token={self._token!r})"

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        if ref.field is None:
            raise MalformedReference(f"{ref.text}: vault references need a #KEY")
        path = self._path(ref, tenant)
        return await asyncio.to_thread(self._read, path, ref, tenant)

    def close(self) -> None:
        """Close the HTTP session of the client (if one was opened)."""
        with self._lock:
            if self._client is not None:
                self._client.adapter.close()
                self._client = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    # --- internals ------------------------------------------------------------------------------

    def _path(self, ref: SecretRef, tenant: str) -> str:
        segments = ref.path.strip("/").split("/")
        if any(segment in ("", ".", "..") for segment in segments):
            raise MalformedReference(
                f"{ref.text}: Vault paths may not contain empty, '.' or '..' segments"
            )
        return self.path_template.format(tenant=tenant, path="/".join(segments))

    def _get_client(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    import hvac
                except ImportError:  # pragma: no cover - depends on the installation
                    raise ConfigurationError(
                        "vault: references need the hvac package",
                        hint="install connectors[vault]",
                    ) from None
                self._client = hvac.Client(
                    url=self.url,
                    token=self._token.reveal(),
                    namespace=self.namespace,
                    timeout=self._timeout,
                    verify=self._verify,
                )
            return self._client

    def _read(self, path: str, ref: SecretRef, tenant: str) -> Secret:
        client = self._get_client()
        try:
            response = client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self.mount, raise_on_deleted_version=True
            )
        except Exception as exc:
            raise _translate(exc, ref, tenant, f"{self.mount}/{path}") from None
        data = (response or {}).get("data") or {}
        values = data.get("data")
        if not isinstance(values, dict):
            raise CredentialMissing(
                ref.text, tenant=tenant, hint=f"Vault has no current version at {self.mount}/{path}"
            )
        assert ref.field is not None
        if ref.field not in values:
            raise CredentialMissing(
                ref.text,
                tenant=tenant,
                hint=f"the Vault secret {self.mount}/{path} has keys {sorted(values)}, "
                f"not {ref.field!r}",
            )
        value = values[ref.field]
        text = value if isinstance(value, str) else json.dumps(value)
        return Secret(text, name=ref.text)


def _translate(exc: Exception, ref: SecretRef, tenant: str, where: str) -> ConnectorError:
    """Map hvac/requests exceptions to the framework's tree, without the response body."""
    import hvac.exceptions as vault_errors
    import requests

    if isinstance(exc, vault_errors.InvalidPath):
        return CredentialMissing(
            ref.text, hint=f"no secret at {where} in Vault", tenant=tenant, connector=_CONNECTOR
        )
    if isinstance(exc, vault_errors.Forbidden):
        return AuthorizationError(
            f"Vault denied reading {where}",
            hint=f"grant the token's policy read on {where.replace('/', '/data/', 1)}",
            status=403,
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, vault_errors.Unauthorized):
        return AuthenticationFailed(
            "Vault rejected the token",
            hint="renew or replace the Vault token",
            status=401,
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, vault_errors.RateLimitExceeded):
        return RateLimited(
            "Vault is rate limiting reads", status=429, tenant=tenant, connector=_CONNECTOR
        )
    if isinstance(exc, vault_errors.InvalidRequest):
        return ConfigurationError(
            f"Vault refused the request for {where}",
            status=400,
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, vault_errors.VaultError):
        return ServiceUnavailable(
            f"Vault failed to read {where}: {type(exc).__name__}",
            tenant=tenant,
            connector=_CONNECTOR,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return Timeout("Vault did not answer in time", tenant=tenant, connector=_CONNECTOR)
    if isinstance(exc, requests.exceptions.ConnectionError):
        return ConnectionFailed(
            "cannot connect to Vault",
            hint="check the Vault address",
            tenant=tenant,
            connector=_CONNECTOR,
        )
    return ServiceUnavailable(
        f"Vault read failed: {type(exc).__name__}", tenant=tenant, connector=_CONNECTOR
    )
