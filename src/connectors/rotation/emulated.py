"""Rotators for the emulators' admin APIs (tests and demos; the real providers have no such API).

``SalesforceEmulatorRotator`` rotates a connected app's consumer secret through
:mod:`connectors.testing.salesforce.rotation`. In production, register a rotator that uses your
provider's real mechanism (the Salesforce Metadata API, a vault's dynamic secrets...).
"""

from __future__ import annotations

from typing import Final

from connectors.errors import AuthenticationFailed, ServiceUnavailable
from connectors.rotation.rotators import RotationRequest
from connectors.secrets.secret import Secret

__all__ = ["SalesforceEmulatorRotator"]

_DEFAULT_BASE: Final = "https://emulated.my.salesforce.com"


class SalesforceEmulatorRotator:
    """Client-secret rotation of a connected app on the Salesforce emulator.

    The credential holds ``client_id`` and ``client_secret``; the rotator signs in with the
    client-credentials flow, then calls ``emulator/connectedapp/*``.
    """

    def __init__(self, api_version: str = "62.0") -> None:
        self.api_version = api_version

    def _base(self, request: RotationRequest) -> str:
        found = request.settings.get("instance_url") or request.settings.get("login_url")
        return str(found) if found else _DEFAULT_BASE

    async def _call(self, request: RotationRequest, secret: Secret, action: str) -> object:
        client_id = request.fields.get("client_id")
        if client_id is None:
            raise AuthenticationFailed("the credential needs a client_id field to rotate")
        async with request.client(self._base(request)) as client:
            token = await client.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": client_id.reveal(),
                    "client_secret": secret.reveal(),
                },
            )
            if token.status_code != 200:
                raise AuthenticationFailed(
                    f"the connected app refused its own secret ({token.status_code})",
                    tenant=request.tenant,
                )
            answer = await client.post(
                f"/services/data/v{self.api_version}/emulator/connectedapp/{action}",
                json={"consumer_key": client_id.reveal()},
                headers={"authorization": f"Bearer {token.json()['access_token']}"},
            )
        if answer.status_code >= 300:
            raise ServiceUnavailable(
                f"emulator secret {action} answered {answer.status_code}", tenant=request.tenant
            )
        return answer.json() if answer.content else None

    async def create(self, request: RotationRequest) -> Secret:
        body = await self._call(request, request.current, "rotate-secret")
        assert isinstance(body, dict)
        return Secret(str(body["consumer_secret"]), name=f"{request.credential}#{request.field}")

    async def revoke(self, request: RotationRequest, old: Secret) -> None:
        await self._call(request, request.current, "revoke-old")

    async def discard(self, request: RotationRequest, new: Secret) -> None:
        await self._call(request, new, "cancel")
