"""Build the ``httpx2.Auth`` of a declarative connector from its resolved ``auth`` setting.

At connect time the Hub has resolved every ``${...}`` in ``auth``, so secret fields arrive as
:class:`~connectors.secrets.Secret` values. ``oauth2_client_credentials`` registers a client
credentials grant with the Hub's token manager (single-flight refresh, tokens persisted per
tenant) and authenticates through :class:`~connectors.auth.ManagedTokenAuth`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

from connectors.auth import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ClientCredentials,
    ClientCredentialsGrant,
    ManagedTokenAuth,
    TokenEndpoint,
    TokenManager,
)
from connectors.clock import Clock
from connectors.config.definition import (
    ApiKeyAuthDefinition,
    BasicAuthDefinition,
    BearerAuthDefinition,
    OAuth2ClientCredentialsDefinition,
)
from connectors.errors import ConfigurationError
from connectors.secrets import Secret

__all__ = ["build_auth"]


def _secret(auth: Mapping[str, object], key: str, connector: str) -> Secret:
    value = auth.get(key)
    if isinstance(value, Secret):
        return value
    raise ConfigurationError(
        f"auth.{key} did not resolve to a secret",
        connector=connector,
        hint="write it as a ${secret:NAME} (or ${env:NAME}) reference",
    )


def build_auth(
    auth: Mapping[str, object] | None,
    *,
    connector: str,
    tenant: str,
    clock: Clock,
    tokens: TokenManager | None,
    token_client: httpx2.AsyncClient | None,
) -> httpx2.Auth | None:
    """The auth flow for the resolved ``auth`` mapping (``None``: no authentication)."""
    if not auth or auth.get("kind") == "none":
        return None
    kind = auth.get("kind")
    # The structure was validated at load time; only the resolved secrets are read here.
    plain: dict[str, Any] = {k: v for k, v in auth.items() if not isinstance(v, Secret)}
    if kind == "api_key":
        spec = ApiKeyAuthDefinition.model_construct(**plain)
        return ApiKeyAuth(
            _secret(auth, "key", connector),
            header=spec.header or "X-API-Key",
            query=spec.query,
            prefix=spec.prefix,
        )
    if kind == "basic":
        basic = BasicAuthDefinition.model_construct(**plain)
        return BasicAuth(basic.username, _secret(auth, "password", connector))
    if kind == "bearer":
        bearer = BearerAuthDefinition.model_construct(**plain)
        return BearerAuth(_secret(auth, "token", connector), scheme=bearer.scheme)
    if kind == "oauth2_client_credentials":
        cc = OAuth2ClientCredentialsDefinition.model_construct(**plain)
        if tokens is None or token_client is None:
            raise ConfigurationError("oauth2 needs the Hub's token manager", connector=connector)
        endpoint = TokenEndpoint(
            cc.token_url,
            client=token_client,
            credentials=ClientCredentials(
                cc.client_id, _secret(auth, "client_secret", connector), cc.client_auth
            ),
            clock=clock,
            connector=connector,
        )
        grant = ClientCredentialsGrant(endpoint, scopes=cc.scopes)
        credential = cc.credential or f"{connector}-oauth"
        tokens.register(tenant, credential, grant)
        return ManagedTokenAuth(tokens, tenant, credential, grant=grant, connector=connector)
    raise ConfigurationError(f"unknown auth kind {kind!r}", connector=connector)
