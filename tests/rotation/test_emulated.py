"""Client-secret rotation through the Salesforce emulator's (emulator-only) admin API."""

from __future__ import annotations

import asyncio

import httpx2

from connectors.rotation import RotationRequest, RotatorRegistry
from connectors.secrets.secret import Secret
from connectors.testing.salesforce import create_salesforce_app
from connectors.testing.salesforce.config import DEFAULT_APP


def _request(transport: httpx2.AsyncBaseTransport, secret: str) -> RotationRequest:
    fields = {"client_id": Secret(DEFAULT_APP.consumer_key), "client_secret": Secret(secret)}
    return RotationRequest(
        tenant="acme",
        credential="sf-app",
        field="client_secret",
        kind="client_secret",
        current=fields["client_secret"],
        fields=fields,
        transport=transport,
    )


async def _token_status(transport: httpx2.AsyncBaseTransport, secret: str) -> int:
    async with httpx2.AsyncClient(transport=transport, base_url="https://sf.test") as client:
        answer = await client.post(
            "/services/oauth2/token",
            data={
                "grant_type": "client_credentials",
                "client_id": DEFAULT_APP.consumer_key,
                "client_secret": secret,
            },
        )
    return answer.status_code


def test_both_secrets_work_until_the_old_one_is_revoked() -> None:
    with create_salesforce_app() as emulator:
        transport = httpx2.ASGITransport(app=emulator.app)
        rotator = RotatorRegistry(discover=False).get("salesforce-emulator")
        old = DEFAULT_APP.consumer_secret

        async def main() -> None:
            new = await rotator.create(_request(transport, old))
            assert new.reveal() != old
            assert await _token_status(transport, old) == 200
            assert await _token_status(transport, new.reveal()) == 200
            await rotator.revoke(_request(transport, new.reveal()), Secret(old))
            assert await _token_status(transport, old) == 400
            assert await _token_status(transport, new.reveal()) == 200

        asyncio.run(main())


def test_discarding_a_new_secret_makes_the_old_one_current_again() -> None:
    with create_salesforce_app() as emulator:
        transport = httpx2.ASGITransport(app=emulator.app)
        rotator = RotatorRegistry(discover=False).get("salesforce-emulator")
        old = DEFAULT_APP.consumer_secret

        async def main() -> None:
            new = await rotator.create(_request(transport, old))
            await rotator.discard(_request(transport, old), new)
            assert await _token_status(transport, old) == 200
            assert await _token_status(transport, new.reveal()) == 400

        asyncio.run(main())
