"""API tokens: format, hashed at rest, expiry, revocation, uniform failures."""

from __future__ import annotations

import asyncio
import hashlib
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

import connectors.access.tokens as tokens_module
from connectors.access.roles import Role
from connectors.access.tokens import ApiTokens
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed, InvalidRequest
from connectors.secrets.secret import Secret
from connectors.storage.access import ApiTokenRow

from ._support import StatementCounter, database

FORMAT = re.compile(r"cft_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")


def now_of(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock.time(), UTC)


def test_a_token_has_the_prefix_a_public_id_and_32_random_bytes(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            tokens = ApiTokens(db, clock=FakeClock())
            plaintext, info = await tokens.create("acme", Role.EDITOR, name="ci", created_by="ann")
            assert isinstance(plaintext, Secret)
            value = plaintext.reveal()
            assert FORMAT.fullmatch(value)
            assert value.split("_")[1] == info.id
            assert value not in repr(plaintext)
            assert value not in str(plaintext)
            assert (info.tenant, info.role, info.name, info.created_by) == (
                "acme",
                Role.EDITOR,
                "ci",
                "ann",
            )
            assert info.expires_at is None
            assert info.revoked_at is None

    asyncio.run(main())


def test_the_database_never_contains_the_plaintext(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            tokens = ApiTokens(db, clock=FakeClock())
            plaintext, _info = await tokens.create("acme", "admin", name="ops", created_by="ann")
            await tokens.verify(plaintext)
            secret_part = plaintext.reveal().split("_", 2)[2]
            async with db.session() as s:
                row = (await s.execute(select(ApiTokenRow))).scalar_one()
            assert row.secret_hash == hashlib.sha256(secret_part.encode()).hexdigest()
            assert secret_part not in repr(row.__dict__)
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("access"))
        assert secret_part.encode() not in raw
        assert plaintext.reveal().encode() not in raw

    asyncio.run(main())


def test_verify_returns_the_grant_and_records_the_last_use(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            tokens = ApiTokens(db, clock=clock, touch_interval=60, cache_ttl=30)
            plaintext, created = await tokens.create("acme", "viewer", name="t", created_by="a")
            info = await tokens.verify(plaintext)
            assert (info.id, info.tenant, info.role) == (created.id, "acme", Role.VIEWER)
            assert info.last_used_at == now_of(clock)
            counter = StatementCounter(db)
            clock.advance(10)
            assert (await tokens.verify(plaintext.reveal())).last_used_at == info.last_used_at
            assert counter.count == 0  # cached, and within the touch interval: no write
            clock.advance(60)
            assert (await tokens.verify(plaintext)).last_used_at == now_of(clock)
            stored = await tokens.get(created.id)
            assert stored is not None
            assert stored.last_used_at == now_of(clock)

    asyncio.run(main())


def test_an_expired_token_is_refused(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            tokens = ApiTokens(db, clock=clock)
            expires = now_of(clock) + timedelta(hours=1)
            plaintext, info = await tokens.create(
                "acme", "editor", name="t", created_by="a", expires_at=expires
            )
            assert info.expires_at == expires
            await tokens.verify(plaintext)
            clock.advance(3600)
            with pytest.raises(AuthenticationFailed):
                await tokens.verify(plaintext)

    asyncio.run(main())


def test_a_revoked_token_is_refused_at_once_here_and_within_the_ttl_elsewhere(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            here, elsewhere = ApiTokens(db, clock=clock), ApiTokens(db, clock=clock, cache_ttl=5)
            plaintext, info = await here.create("acme", "admin", name="t", created_by="a")
            await here.verify(plaintext)
            await elsewhere.verify(plaintext)
            assert await here.revoke(info.id)
            assert not await here.revoke(info.id)  # already revoked
            with pytest.raises(AuthenticationFailed):
                await here.verify(plaintext)
            clock.advance(5.01)
            with pytest.raises(AuthenticationFailed):
                await elsewhere.verify(plaintext)
            [listed] = await here.list("acme")
            assert listed.revoked_at is not None
            assert await here.list("acme", include_revoked=False) == []

    asyncio.run(main())


def test_a_tenant_cannot_revoke_or_list_another_tenants_tokens(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            tokens = ApiTokens(db, clock=FakeClock())
            plaintext, info = await tokens.create("tenant-b", "admin", name="t", created_by="a")
            await tokens.create("tenant-a", "viewer", name="mine", created_by="a")
            assert not await tokens.revoke(info.id, tenant="tenant-a")
            await tokens.verify(plaintext)
            assert [t.name for t in await tokens.list("tenant-a")] == ["mine"]

    asyncio.run(main())


def test_every_kind_of_bad_token_fails_the_same_way(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            tokens = ApiTokens(db, clock=FakeClock())
            plaintext, _info = await tokens.create("acme", "admin", name="t", created_by="a")
            good = plaintext.reveal()
            wrong_secret = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
            unknown_id = "cft_000000000000_" + good.split("_", 2)[2]
            candidates = ["", "garbage", "cft_", good + "x", "xft" + good[3:], wrong_secret]
            messages = set()
            for bad in [*candidates, unknown_id]:
                with pytest.raises(AuthenticationFailed) as raised:
                    await tokens.verify(bad)
                messages.add(str(raised.value))
                assert good[-20:] not in str(raised.value)
            assert len(messages) == 1

    asyncio.run(main())


def test_secrets_are_compared_in_constant_time_even_for_unknown_ids(tmp_path, monkeypatch):
    async def main():
        async with database(tmp_path) as db:
            calls: list[tuple[str, str]] = []
            real = tokens_module.hmac.compare_digest

            def spy(a, b):
                if isinstance(a, str) and len(a) == 64:  # hash comparisons, not Secret.__eq__
                    calls.append((a, b))
                return real(a, b)

            monkeypatch.setattr(tokens_module.hmac, "compare_digest", spy)
            tokens = ApiTokens(db, clock=FakeClock())
            plaintext, _ = await tokens.create("acme", "admin", name="t", created_by="a")
            secret_part = plaintext.reveal().split("_", 2)[2]
            last = "x" if secret_part[-1] != "x" else "y"
            with pytest.raises(AuthenticationFailed):
                await tokens.verify(plaintext.reveal()[:-1] + last)
            assert len(calls) == 1
            with pytest.raises(AuthenticationFailed):
                await tokens.verify("cft_ffffffffffff_" + secret_part)
            assert len(calls) == 2
            await tokens.verify(plaintext)
            assert len(calls) == 3

    asyncio.run(main())


def test_bad_creation_input_is_refused(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            tokens = ApiTokens(db, clock=clock)
            with pytest.raises(InvalidRequest, match="past"):
                await tokens.create(
                    "acme", "admin", name="t", created_by="a", expires_at=now_of(clock)
                )
            with pytest.raises(InvalidRequest, match="timezone"):
                await tokens.create(
                    "acme", "admin", name="t", created_by="a", expires_at=datetime(2999, 1, 1)
                )
            with pytest.raises(InvalidRequest, match="name"):
                await tokens.create("acme", "admin", name="", created_by="a")
            with pytest.raises(ValueError, match="unknown role"):
                await tokens.create("acme", "root", name="t", created_by="a")

    asyncio.run(main())
