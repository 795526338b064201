"""Slack rotation on the emulator: client/signing secrets via its admin API, bot tokens by refresh.

- :class:`SlackEmulatorRotator` (registry name ``slack-emulator``; ``slack-emulator-signing``
  for the signing secret) rotates the app's secret through the emulator-only
  ``emulator.apps.*`` methods of :mod:`connectors.testing.slack.rotation`. Slack itself has no
  such API: in production, register a rotator that uses your real mechanism.
- :func:`refresh_bot_token` rotates a bot token the way Slack does (``oauth.v2.access`` with
  ``grant_type=refresh_token``, through the token manager: single-flight, compare-and-swap) and
  proves the new token with ``auth.test``.
- :class:`SlackClientSecretVerifier` verifies a new client secret by using it: a forced bot-token
  refresh signed with the stored (new) secret, then ``auth.test`` with the new token. The
  default :class:`~connectors.rotation.HubVerifier` only runs ``auth.test``, which never
  presents the client secret, so it cannot tell a working secret from a broken one.

Both pieces read the credential's ``client_id`` (or the connector's ``client_id`` setting) and
``client_secret`` fields, and the connector's ``base_url`` (default ``https://slack.com/api/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, Literal

import httpx2

from connectors.adapters.slack.oauth import SlackOAuthApp
from connectors.auth.grants import TokenGrant
from connectors.auth.manager import TokenManager
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    CredentialMissing,
    ServiceUnavailable,
)
from connectors.rotation.policy import RotationPolicy
from connectors.rotation.rotators import RotationRequest
from connectors.rotation.verification import Verification
from connectors.secrets.secret import Secret

if TYPE_CHECKING:
    from connectors.hub import Hub

__all__ = ["SlackClientSecretVerifier", "SlackEmulatorRotator", "refresh_bot_token"]

_DEFAULT_BASE: Final = "https://slack.com/api/"
_AUTH_ERRORS: Final = frozenset({"invalid_client_id", "bad_client_secret"})


def _base(settings: Mapping[str, object]) -> str:
    found = settings.get("base_url")
    base = str(found) if found else _DEFAULT_BASE
    return base if base.endswith("/") else base + "/"


def _client_id(fields: Mapping[str, Secret], settings: Mapping[str, object]) -> str:
    found = fields.get("client_id")
    if found is not None:
        return found.reveal()
    setting = settings.get("client_id")
    if isinstance(setting, str) and setting:
        return setting
    raise AuthenticationFailed(
        "rotating a Slack app secret needs the app's client_id",
        connector="slack",
        hint="add a client_id field to the credential or a client_id setting to the connector",
    )


class SlackEmulatorRotator:
    """Rotation of the Slack emulator app's client secret (or signing secret) with an overlap.

    Every call authenticates as the app with the credential's ``client_secret`` field, which is
    valid throughout: the old value before and during the overlap (``create``, ``discard``), the
    new one once committed (``revoke``).
    """

    def __init__(self, which: Literal["client_secret", "signing_secret"] = "client_secret") -> None:
        self.which = which

    async def _call(
        self, request: RotationRequest, method: str, form: Mapping[str, str] | None = None
    ) -> Mapping[str, object]:
        auth = request.fields.get("client_secret")
        if auth is None:
            raise CredentialMissing(f"{request.credential}#client_secret", tenant=request.tenant)
        data = {
            "client_id": _client_id(request.fields, request.settings),
            "client_secret": auth.reveal(),
            **(form or {}),
        }
        async with request.client(_base(request.settings)) as client:
            answer = await client.post(method, data=data)
        body = answer.json() if answer.status_code == 200 else None
        if not isinstance(body, dict):
            raise ServiceUnavailable(
                f"emulator {method} answered HTTP {answer.status_code}",
                connector="slack",
                tenant=request.tenant,
            )
        if body.get("ok") is not True:
            code = str(body.get("error") or "unknown_error")
            error = AuthenticationFailed if code in _AUTH_ERRORS else ConnectorError
            raise error(
                f"emulator {method} refused: {code}",
                connector="slack",
                tenant=request.tenant,
                provider_code=code,
            )
        return body

    async def create(self, request: RotationRequest) -> Secret:
        method = (
            "emulator.apps.rotateClientSecret"
            if self.which == "client_secret"
            else "emulator.apps.rotateSigningSecret"
        )
        body = await self._call(request, method)
        return Secret(str(body[self.which]), name=f"{request.credential}#{request.field}")

    async def revoke(self, request: RotationRequest, old: Secret) -> None:
        await self._call(request, "emulator.apps.revokeOld", {"secret": self.which})

    async def discard(self, request: RotationRequest, new: Secret) -> None:
        await self._call(request, "emulator.apps.cancel", {"secret": self.which})


async def refresh_bot_token(
    tokens: TokenManager,
    tenant: str,
    credential: str,
    *,
    grant: TokenGrant | None = None,
    base_url: str = _DEFAULT_BASE,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> str:
    """Force a refresh of a rotating bot token and check the new one with ``auth.test``.

    ``grant`` (default: the one registered with the manager) is Slack's refresh grant. Returns
    the workspace id ``auth.test`` reports; raises :class:`AuthenticationFailed` when Slack
    refuses the new token, and the token manager's errors when the refresh fails.
    """
    stored = await tokens.store.load(tenant, credential)
    if stored is None:
        raise CredentialMissing(credential, tenant=tenant)
    tokens.forget(tenant, credential)
    token = await tokens.refresh(tenant, credential, stale=stored.token, grant=grant)
    base = _base({"base_url": base_url})
    async with httpx2.AsyncClient(transport=transport, trust_env=False) as client:
        answer = await client.post(
            base + "auth.test",
            headers={"Authorization": f"Bearer {token.access_token.reveal()}"},
        )
    body = answer.json() if answer.status_code == 200 else None
    if not isinstance(body, dict) or body.get("ok") is not True:
        code = str(body.get("error")) if isinstance(body, dict) else f"HTTP {answer.status_code}"
        raise AuthenticationFailed(
            f"auth.test refused the refreshed bot token: {code}",
            connector="slack",
            tenant=tenant,
            provider_code=code,
        )
    return str(body.get("team_id", ""))


class _Borrowed(httpx2.AsyncBaseTransport):
    """The Hub's transport, lent to a short-lived client: closing the client leaves it open."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Nothing: the Hub closes its transports."""


class SlackClientSecretVerifier:
    """Verifies a rotated Slack client secret by refreshing ``token_credential`` with it.

    The secret comes from the policy's credential (its ``client_secret`` field, freshly read),
    ``client_id``, ``base_url`` and the transport from the policy's connector. A refresh burns
    the single-use refresh token only on success, so a refused secret leaves the token usable.
    """

    def __init__(self, hub: Hub, token_credential: str) -> None:
        self.hub = hub
        self.token_credential = token_credential

    async def verify(self, tenant: str, policy: RotationPolicy) -> Verification:
        if policy.connector is None:
            return Verification(False, "no connector: nothing to refresh against")
        hub = self.hub
        settings = hub.definition(policy.connector).settings
        transport = hub.transports.get(policy.connector)
        cred = await hub.services.credentials.get(tenant, policy.credential, fresh=True)
        secret = cred.fields.get(policy.field)
        if secret is None:
            return Verification(False, f"the credential has no {policy.field} field")
        try:
            base = _base(settings)
            app = SlackOAuthApp(
                client_id=_client_id(cred.fields, settings),
                client_secret=secret,
                token_url=base + "oauth.v2.access",
                transport=transport,
                clock=hub.clock,
            )
            lent = None if transport is None else _Borrowed(transport)
            team = await refresh_bot_token(
                hub.tokens,
                tenant,
                self.token_credential,
                grant=app.refresh_grant(),
                base_url=base,
                transport=lent,
            )
        except ConnectorError as exc:
            return Verification(False, f"refresh with the new secret failed: {exc.code}")
        return Verification(True, f"token refreshed with the new secret; workspace {team}")
