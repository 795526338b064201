"""Endpoints: SSRF-checked at registration, secrets by reference, tenant-scoped."""

import asyncio

import pytest

from connectors.adapters.webhook import HmacScheme, StaticSecrets
from connectors.adapters.webhook.endpoints import EndpointStore, resolve_secrets
from connectors.errors import BlockedDestination, CredentialMissing, InvalidRequest, NotFound
from connectors.secrets import Secret
from connectors.secrets.refs import parse_ref
from tests.jobs._support import make_db


def run(coro):
    return asyncio.run(coro)


def test_literal_private_urls_are_refused_at_registration_unless_allowed(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        store = EndpointStore(db)
        for url in ("http://127.0.0.1/x", "http://localhost/", "http://[::1]/", "http://0x7f.1/"):
            with pytest.raises(BlockedDestination):
                await store.create("acme", url, ["${secret:hook}"])
        ep = await store.create(
            "acme", "http://127.0.0.1:9/x", ["${secret:hook}"], allow_nets=["127.0.0.1/32"]
        )
        assert ep.allow_nets == ("127.0.0.1/32",)
        with pytest.raises(BlockedDestination):
            await store.create("acme", "ftp://example.com/", ["${secret:hook}"])
        await db.dispose()

    run(main())


def test_endpoints_store_references_never_values_and_are_tenant_scoped(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        store = EndpointStore(db)
        ep = await store.create(
            "acme",
            "https://hooks.example.com/",
            ["${secret:new}", "${secret:old}"],
            scheme="custom",
            custom=HmacScheme(header="X-Sig"),
        )
        again = await store.get("acme", ep.id)
        assert again.secret_refs == ("${secret:new}", "${secret:old}")
        assert again.custom == HmacScheme(header="X-Sig")
        assert "whsec" not in repr(again.to_dict())
        with pytest.raises(NotFound):
            await store.get("other", ep.id)
        assert [e.id for e in await store.list("acme")] == [ep.id]
        assert await store.list("other") == []
        rotated = await store.set_secrets("acme", ep.id, ["${secret:newer}"])
        assert rotated.secret_refs == ("${secret:newer}",)
        disabled = await store.set_enabled("acme", ep.id, False)
        assert not disabled.enabled
        assert disabled.disabled_reason == "disabled by an operator"
        with pytest.raises(InvalidRequest):
            await store.create("acme", "https://hooks.example.com/", [])
        with pytest.raises(InvalidRequest):
            await store.create(
                "acme", "https://hooks.example.com/", ["${secret:x}"], scheme="custom"
            )
        await db.dispose()

    run(main())


def test_secrets_resolve_per_tenant(tmp_path):
    source = StaticSecrets()
    source.set("${secret:hook}", Secret("whsec_AAAA"), tenant="acme")

    async def main():
        db = await make_db(tmp_path)
        store = EndpointStore(db)
        ep = await store.create("acme", "https://h.example.com/", ["${secret:hook}"])
        [secret] = await resolve_secrets(ep, source)
        assert secret.reveal() == "whsec_AAAA"
        with pytest.raises(CredentialMissing):
            await source.resolve(parse_ref("${secret:hook}"), tenant="other")
        await db.dispose()

    run(main())
