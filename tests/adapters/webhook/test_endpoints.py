"""Endpoints: SSRF-checked at registration, secrets by reference, tenant-scoped; signers cached
per tenant and references for a short TTL."""

import asyncio
import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.webhook import HmacScheme, StaticSecrets
from connectors.adapters.webhook.endpoints import (
    Endpoint,
    EndpointSigner,
    EndpointStore,
    SigningCache,
    resolve_secrets,
)
from connectors.adapters.webhook.signing import SigningScheme, sign_headers
from connectors.clock import FakeClock
from connectors.errors import (
    BlockedDestination,
    ConfigurationError,
    CredentialMissing,
    InvalidRequest,
    NotFound,
)
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


class CountingSecrets(StaticSecrets):
    def __init__(self):
        super().__init__()
        self.resolved = []

    async def resolve(self, ref, *, tenant):
        self.resolved.append((tenant, str(ref)))
        return await super().resolve(ref, tenant=tenant)


def whsec(raw: bytes) -> str:
    return "whsec_" + base64.b64encode(raw).decode()


def endpoint(tenant="acme", refs=("${secret:hook}",), scheme=SigningScheme.STANDARD, custom=None):
    return Endpoint("ep_1", tenant, "https://h.example.com/", refs, scheme=scheme, custom=custom)


def test_signers_are_cached_per_tenant_so_two_tenants_never_share_a_secret():
    source = CountingSecrets()
    source.set("${secret:hook}", Secret(whsec(b"a" * 32)), tenant="acme")
    source.set("${secret:hook}", Secret(whsec(b"b" * 32)), tenant="other")

    async def main():
        cache = SigningCache(source, clock=FakeClock(), ttl=10)
        acme = (await cache.signer(endpoint("acme"))).headers("msg_1", 1, b"{}")
        other = (await cache.signer(endpoint("other"))).headers("msg_1", 1, b"{}")
        assert acme["webhook-signature"] != other["webhook-signature"]
        await cache.signer(endpoint("acme"))
        await cache.signer(endpoint("other"))

    run(main())
    assert source.resolved == [("acme", "${secret:hook}"), ("other", "${secret:hook}")]


def test_a_cached_signer_expires_after_the_ttl_and_on_invalidate():
    source = CountingSecrets()
    source.set("${secret:hook}", Secret(whsec(b"a" * 32)))
    clock = FakeClock()

    async def main():
        cache = SigningCache(source, clock=clock, ttl=10)
        await cache.signer(endpoint())
        clock.advance(9)
        await cache.signer(endpoint())
        assert len(source.resolved) == 1
        clock.advance(2)
        await cache.signer(endpoint())
        assert len(source.resolved) == 2
        cache.invalidate("other")
        await cache.signer(endpoint())
        assert len(source.resolved) == 2
        cache.invalidate("acme")
        await cache.signer(endpoint())
        assert len(source.resolved) == 3

    run(main())


def test_new_references_miss_the_cache_at_once_and_failures_are_never_cached():
    source = CountingSecrets()
    source.set("${secret:hook}", Secret(whsec(b"a" * 32)))

    async def main():
        cache = SigningCache(source, clock=FakeClock(), ttl=10)
        await cache.signer(endpoint())
        with pytest.raises(CredentialMissing):  # a rotation to a reference not stored yet
            await cache.signer(endpoint(refs=("${secret:hook-v2}", "${secret:hook}")))
        source.set("${secret:hook-v2}", Secret(whsec(b"c" * 32)))
        rotated = await cache.signer(endpoint(refs=("${secret:hook-v2}", "${secret:hook}")))
        assert len(rotated.headers("m", 1, b"").get("webhook-signature").split()) == 2
        source.set("${secret:bad}", Secret("whsec_not base64!"))
        for _ in range(2):
            with pytest.raises(ConfigurationError):
                await cache.signer(endpoint(refs=("${secret:bad}",)))

    run(main())
    assert source.resolved.count(("acme", "${secret:bad}")) == 2


def test_a_signer_never_shows_its_secrets():
    signer = EndpointSigner(SigningScheme.STANDARD, [Secret(whsec(b"z" * 32))], None)
    assert "z" * 8 not in repr(signer)
    assert base64.b64encode(b"z" * 32).decode() not in repr(signer)


@given(
    keys=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=3),
    body=st.binary(max_size=300),
    msg_id=st.text(alphabet="abcdefXYZ0123_", min_size=1, max_size=30),
    timestamp=st.integers(min_value=0, max_value=2**40),
)
def test_the_precomputed_standard_signer_matches_sign_headers(keys, body, msg_id, timestamp):
    secrets = [Secret(whsec(k)) for k in keys]
    expected = sign_headers(SigningScheme.STANDARD, msg_id, timestamp, body, secrets)
    signer = EndpointSigner(SigningScheme.STANDARD, secrets, None)
    assert signer.headers(msg_id, timestamp, body) == expected


def test_github_and_custom_signers_sign_like_sign_headers():
    secrets = [Secret("s3cret"), Secret("older")]
    custom = HmacScheme(
        header="X-Sig", prefix="sha512=", algorithm="sha512", signed="id.timestamp.body"
    )
    for scheme, extra in ((SigningScheme.GITHUB, None), (SigningScheme.CUSTOM, custom)):
        signer = EndpointSigner(scheme, secrets, extra)
        expected = sign_headers(scheme, "msg_1", 7, b"{}", secrets, custom=extra)
        assert signer.headers("msg_1", 7, b"{}") == expected
