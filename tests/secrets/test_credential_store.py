"""CredentialStore: versions, compare-and-swap, tombstones, cache, tamper checks, rotation."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete, select, update

from connectors.clock import FakeClock
from connectors.errors import (
    ConfigurationError,
    Conflict,
    CredentialMissing,
    InvalidRequest,
)
from connectors.secrets.crypto import MasterKeyring
from connectors.secrets.secret import Secret
from connectors.secrets.store import ChangeEvent, CredentialStore
from connectors.storage.credentials import CredentialRow, TenantKeyRow

from ._support import key_entry, keyring, open_db, open_store

# --- basics --------------------------------------------------------------------------------------


def test_put_then_get_returns_fields_as_secrets_with_metadata_and_version(db_url):
    async def main():
        async with open_store(db_url) as store:
            version = await store.put(
                "acme",
                "salesforce",
                {"client_id": "cid", "client_secret": Secret("s3cr3t")},
                metadata={"scopes": ["api", "refresh_token"], "expires_at": 123},
                actor="alice",
            )
            cred = await store.get("acme", "salesforce")
            assert version == 1
            assert cred.version == 1
            assert cred.tenant == "acme"
            assert cred.name == "salesforce"
            assert set(cred.fields) == {"client_id", "client_secret"}
            assert all(isinstance(v, Secret) for v in cred.fields.values())
            assert cred.fields["client_secret"].reveal() == "s3cr3t"
            assert cred.metadata == {"scopes": ["api", "refresh_token"], "expires_at": 123}
            assert cred.updated_by == "alice"
            assert cred.updated_at.tzinfo is not None
            assert "s3cr3t" not in repr(cred)

    asyncio.run(main())


def test_each_put_makes_a_new_version(db_url):
    async def main():
        async with open_store(db_url) as store:
            assert await store.put("t1", "k", {"value": "a"}, actor="x") == 1
            assert await store.put("t1", "k", {"value": "b"}, actor="x") == 2
            assert await store.put("t1", "k", {"value": "c"}, actor="x") == 3
            assert (await store.get_field("t1", "k")).reveal() == "c"

    asyncio.run(main())


def test_get_field_defaults_to_value_and_names_a_missing_field(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t1", "api", {"value": "v", "other": "o"}, actor="x")
            assert (await store.get_field("t1", "api")).reveal() == "v"
            with pytest.raises(CredentialMissing) as info:
                await store.get_field("t1", "api", "nope")
            assert "api#nope" in str(info.value)
            assert info.value.tenant == "t1"

    asyncio.run(main())


def test_missing_credential_names_tenant_and_credential(db_url):
    async def main():
        async with open_store(db_url) as store:
            with pytest.raises(CredentialMissing) as info:
                await store.get("acme", "slack")
            text = str(info.value)
            assert "'slack'" in text
            assert "'acme'" in text

    asyncio.run(main())


def test_list_shows_names_fields_and_metadata_but_no_values(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t1", "b", {"token": "tok-b"}, metadata={"m": 1}, actor="x")
            await store.put("t1", "a", {"token": "tok-a", "id": "i"}, actor="x")
            await store.put("t2", "c", {"token": "tok-c"}, actor="x")
            infos = await store.list("t1")
            assert [i.name for i in infos] == ["a", "b"]
            assert infos[0].field_names == ("id", "token")
            assert infos[1].metadata == {"m": 1}
            assert "tok-" not in repr(infos)

    asyncio.run(main())


def test_metadata_handed_out_is_a_copy(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t1", "a", {"v": "x"}, metadata={"scopes": ["a"]}, actor="x")
            cred = await store.get("t1", "a")
            scopes = cred.metadata["scopes"]
            assert isinstance(scopes, list)
            scopes.append("b")
            assert (await store.get("t1", "a", fresh=True)).metadata["scopes"] == ["a"]

    asyncio.run(main())


@pytest.mark.parametrize(
    ("tenant", "name", "fields", "metadata"),
    [
        ("", "a", {"v": "x"}, None),
        ("bad tenant", "a", {"v": "x"}, None),
        ("t", "", {"v": "x"}, None),
        ("t", "../a", {"v": "x"}, None),
        ("t", "a", {}, None),
        ("t", "a", {"bad field": "x"}, None),
        ("t", "a", {"v": 3}, None),
        ("t", "a", {"v": "x"}, {"token": Secret("no-secrets-in-metadata")}),
        ("t", "a", {"v": "x"}, {"n": float("nan")}),
    ],
)
def test_invalid_input_is_refused_before_storage(db_url, tenant, name, fields, metadata):
    async def main():
        async with open_store(db_url) as store:
            with pytest.raises(InvalidRequest) as info:
                await store.put(tenant, name, fields, metadata=metadata, actor="x")
            assert "no-secrets-in-metadata" not in str(info.value)

    asyncio.run(main())


def test_a_change_needs_an_actor(db_url):
    async def main():
        async with open_store(db_url) as store:
            with pytest.raises(InvalidRequest):
                await store.put("t", "a", {"v": "x"}, actor="")

    asyncio.run(main())


# --- compare-and-swap ----------------------------------------------------------------------------


def test_expected_version_zero_means_must_not_exist(db_url):
    async def main():
        async with open_store(db_url) as store:
            assert await store.put("t", "a", {"v": "1"}, actor="x", expected_version=0) == 1
            with pytest.raises(Conflict) as info:
                await store.put("t", "a", {"v": "2"}, actor="x", expected_version=0)
            assert "version 1" in str(info.value)
            assert (await store.get_field("t", "a", "v")).reveal() == "1"

    asyncio.run(main())


def test_stale_expected_version_conflicts_and_current_one_succeeds(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "1"}, actor="x")
            await store.put("t", "a", {"v": "2"}, actor="x")
            with pytest.raises(Conflict):
                await store.put("t", "a", {"v": "stale"}, actor="x", expected_version=1)
            assert await store.put("t", "a", {"v": "3"}, actor="x", expected_version=2) == 3
            with pytest.raises(Conflict):
                await store.put("t", "missing", {"v": "x"}, actor="x", expected_version=4)

    asyncio.run(main())


def test_concurrent_compare_and_swap_has_exactly_one_winner(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "token", {"refresh_token": "r0"}, actor="x")

            async def refresh(i: int) -> int | None:
                try:
                    return await store.put(
                        "t", "token", {"refresh_token": f"r{i}"}, actor="x", expected_version=1
                    )
                except Conflict:
                    return None

            results = await asyncio.gather(*(refresh(i) for i in range(1, 9)))
            winners = [r for r in results if r is not None]
            assert winners == [2]
            assert (await store.get("t", "token", fresh=True)).version == 2

    asyncio.run(main())


def test_concurrent_unconditional_puts_all_land_with_distinct_versions(db_url):
    async def main():
        async with open_store(db_url) as store:
            versions = await asyncio.gather(
                *(store.put("t", "a", {"v": str(i)}, actor="x") for i in range(6))
            )
            assert sorted(versions) == [1, 2, 3, 4, 5, 6]

    asyncio.run(main())


def test_update_metadata_is_compare_and_swap_and_keeps_fields(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "keep"}, metadata={"scopes": ["a"]}, actor="x")
            version = await store.update_metadata(
                "t", "a", {"needs_reauth": True}, actor="y", expected_version=1
            )
            assert version == 2
            cred = await store.get("t", "a")
            assert cred.metadata == {"needs_reauth": True}
            assert cred.fields["v"].reveal() == "keep"
            assert cred.updated_by == "y"
            with pytest.raises(Conflict):
                await store.update_metadata("t", "a", {}, actor="y", expected_version=1)
            with pytest.raises(CredentialMissing):
                await store.update_metadata("t", "nope", {}, actor="y", expected_version=1)

    asyncio.run(main())


# --- tombstones ----------------------------------------------------------------------------------


def test_delete_leaves_a_tombstone_hidden_from_get_and_list(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "x"}, actor="x")
            await store.put("t", "b", {"v": "y"}, actor="x")
            assert await store.delete("t", "a", actor="bob") == 2
            with pytest.raises(CredentialMissing):
                await store.get("t", "a")
            assert [i.name for i in await store.list("t")] == ["b"]
            with pytest.raises(CredentialMissing):
                await store.delete("t", "a", actor="bob")
            async with store._db.session() as session:
                row = await session.scalar(select(CredentialRow).where(CredentialRow.name == "a"))
                assert row is not None
                assert row.deleted
                assert row.ciphertext is None
                assert row.nonce is None

    asyncio.run(main())


def test_put_after_delete_recreates_with_a_higher_version(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "1"}, actor="x")
            await store.put("t", "a", {"v": "2"}, actor="x")
            await store.delete("t", "a", actor="x")
            with pytest.raises(Conflict):
                await store.put("t", "a", {"v": "3"}, actor="x", expected_version=3)
            assert await store.put("t", "a", {"v": "4"}, actor="x", expected_version=0) == 4
            assert (await store.get_field("t", "a", "v")).reveal() == "4"

    asyncio.run(main())


def test_delete_with_stale_expected_version_conflicts(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "1"}, actor="x")
            await store.put("t", "a", {"v": "2"}, actor="x")
            with pytest.raises(Conflict):
                await store.delete("t", "a", actor="x", expected_version=1)
            assert (await store.get("t", "a")).version == 2

    asyncio.run(main())


# --- cache ---------------------------------------------------------------------------------------


def test_reads_within_ttl_are_served_from_cache(db_url):
    async def main():
        clock = FakeClock()
        async with open_store(db_url, clock=clock, cache_ttl=60) as store:
            await store.put("t", "a", {"v": "x"}, actor="x")
            first = await store.get("t", "a")
            second = await store.get("t", "a")
            assert second is first
            assert store.stats.decryptions == 1
            clock.advance(61)
            third = await store.get("t", "a")
            assert third is not first
            assert store.stats.decryptions == 2

    asyncio.run(main())


def test_put_and_delete_invalidate_the_cache(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "old"}, actor="x")
            assert (await store.get_field("t", "a", "v")).reveal() == "old"
            await store.put("t", "a", {"v": "new"}, actor="x")
            assert (await store.get_field("t", "a", "v")).reveal() == "new"
            await store.update_metadata("t", "a", {"m": 1}, actor="x", expected_version=2)
            assert (await store.get("t", "a")).metadata == {"m": 1}
            await store.delete("t", "a", actor="x")
            with pytest.raises(CredentialMissing):
                await store.get("t", "a")

    asyncio.run(main())


def test_another_process_write_is_seen_after_ttl_or_with_fresh(db_url):
    async def main():
        clock = FakeClock()
        ring = keyring("k1")
        async with open_store(db_url, ring, clock=clock) as mine:
            other = CredentialStore(mine._db, ring, clock=clock)
            await mine.put("t", "a", {"v": "1"}, actor="x")
            assert (await mine.get_field("t", "a", "v")).reveal() == "1"
            await other.put("t", "a", {"v": "2"}, actor="x")
            assert (await mine.get_field("t", "a", "v")).reveal() == "1"  # cached
            assert (await mine.get_field("t", "a", "v", fresh=True)).reveal() == "2"
            await other.put("t", "a", {"v": "3"}, actor="x")
            clock.advance(61)
            assert (await mine.get_field("t", "a", "v")).reveal() == "3"

    asyncio.run(main())


def test_cache_ttl_zero_disables_caching(db_url):
    async def main():
        async with open_store(db_url, cache_ttl=0) as store:
            await store.put("t", "a", {"v": "x"}, actor="x")
            await store.get("t", "a")
            await store.get("t", "a")
            assert store.stats.decryptions == 2
            assert store.stats.hits == 0

    asyncio.run(main())


def test_cache_is_bounded(db_url):
    async def main():
        async with open_db(db_url) as db:
            store = CredentialStore(db, keyring(), clock=FakeClock(), cache_size=3)
            for i in range(5):
                await store.put("t", f"c{i}", {"v": str(i)}, actor="x")
                await store.get("t", f"c{i}")
            assert len(store._cache) == 3

    asyncio.run(main())


# --- change hook ---------------------------------------------------------------------------------


def test_on_change_sees_every_committed_change_without_values(db_url):
    async def main():
        events: list[ChangeEvent] = []

        async def hook(event: ChangeEvent) -> None:
            events.append(event)

        k1, k2 = key_entry("k1"), key_entry("k2")
        async with open_store(db_url, MasterKeyring.parse(k1), on_change=hook) as store:
            await store.put("t", "a", {"v": "hook-secret"}, actor="alice")
            await store.update_metadata("t", "a", {"m": 1}, actor="bob", expected_version=1)
            await store.delete("t", "a", actor="carol")
            with pytest.raises(Conflict):
                await store.put("t", "a", {"v": "x"}, actor="dave", expected_version=7)
            store._keyring = MasterKeyring.parse(f"{k2},{k1}")  # restart with a new first key
            await store.rotate_master_key(actor="ops")
        assert [(e.tenant, e.name, e.version, e.action, e.actor) for e in events] == [
            ("t", "a", 1, "put", "alice"),
            ("t", "a", 2, "update_metadata", "bob"),
            ("t", "a", 3, "delete", "carol"),
            ("t", None, None, "rotate_master_key", "ops"),
        ]
        assert events[-1].kid == "k2"
        assert "hook-secret" not in repr(events)

    asyncio.run(main())


def test_a_failing_hook_surfaces_after_the_change_is_committed(db_url):
    async def main():
        async def hook(event: ChangeEvent) -> None:
            raise RuntimeError("audit sink down")

        async with open_store(db_url, on_change=hook) as store:
            with pytest.raises(RuntimeError, match="audit sink down"):
                await store.put("t", "a", {"v": "x"}, actor="x")
            store.on_change = None
            assert (await store.get("t", "a")).version == 1

    asyncio.run(main())


# --- ciphertext binding --------------------------------------------------------------------------


async def _copy_ciphertext(store: CredentialStore, src: tuple[str, str], dst: tuple[str, str]):
    async with store._db.session() as session:
        source = await session.scalar(
            select(CredentialRow).where(
                CredentialRow.tenant == src[0], CredentialRow.name == src[1]
            )
        )
        assert source is not None
        await session.execute(
            update(CredentialRow)
            .where(CredentialRow.tenant == dst[0], CredentialRow.name == dst[1])
            .values(ciphertext=source.ciphertext, nonce=source.nonce)
        )
    store.clear_cache()


def test_ciphertext_copied_to_another_tenant_fails_to_decrypt(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("victim", "sf", {"v": "victim-secret"}, actor="x")
            await store.put("attacker", "sf", {"v": "attacker-secret"}, actor="x")
            await _copy_ciphertext(store, ("victim", "sf"), ("attacker", "sf"))
            with pytest.raises(ConfigurationError) as info:
                await store.get("attacker", "sf")
            assert "does not belong to this tenant/name" in str(info.value)
            assert "victim-secret" not in str(info.value)

    asyncio.run(main())


def test_ciphertext_copied_to_another_name_fails_to_decrypt(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "prod", {"v": "prod-secret"}, actor="x")
            await store.put("t", "sandbox", {"v": "sandbox-secret"}, actor="x")
            await _copy_ciphertext(store, ("t", "prod"), ("t", "sandbox"))
            with pytest.raises(ConfigurationError, match="does not belong to this tenant/name"):
                await store.get("t", "sandbox")

    asyncio.run(main())


def test_old_ciphertext_replayed_at_a_newer_version_fails_to_decrypt(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "revoked"}, actor="x")
            async with store._db.session() as session:
                old = await session.scalar(select(CredentialRow))
                assert old is not None
                old_ct, old_nonce = old.ciphertext, old.nonce
            await store.put("t", "a", {"v": "current"}, actor="x")
            async with store._db.session() as session:
                await session.execute(
                    update(CredentialRow).values(ciphertext=old_ct, nonce=old_nonce)
                )
            store.clear_cache()
            with pytest.raises(ConfigurationError, match="does not belong"):
                await store.get("t", "a")

    asyncio.run(main())


def test_data_key_copied_to_another_tenant_fails_to_unwrap(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("victim", "a", {"v": "x"}, actor="x")
            await store.put("attacker", "a", {"v": "y"}, actor="x")
            async with store._db.session() as session:
                victim = await session.get(TenantKeyRow, ("victim", 1))
                assert victim is not None
                await session.execute(
                    update(TenantKeyRow)
                    .where(TenantKeyRow.tenant == "attacker")
                    .values(wrapped_key=victim.wrapped_key)
                )
            store.clear_cache()
            with pytest.raises(ConfigurationError, match="data key of tenant 'attacker'"):
                await store.get("attacker", "a")

    asyncio.run(main())


def test_a_lost_data_key_is_a_configuration_error_not_a_missing_credential(db_url):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "x"}, actor="x")
            async with store._db.session() as session:
                await session.execute(delete(TenantKeyRow))
            store.clear_cache()
            with pytest.raises(ConfigurationError, match="data key of tenant 't' is missing"):
                await store.get("t", "a")

    asyncio.run(main())


def test_at_rest_values_are_not_in_the_database_file(db_url, tmp_path):
    async def main():
        async with open_store(db_url) as store:
            await store.put("t", "a", {"v": "plaintext-marker-42"}, actor="x")
            await store.put("t", "b", {"v": "plaintext-marker-42"}, actor="x")

    asyncio.run(main())
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("t.db*"))
    assert b"plaintext-marker-42" not in blob
    assert b"t" in blob  # the file is really there


# --- master keys ---------------------------------------------------------------------------------


def test_removing_a_master_key_still_in_use_names_it(db_url):
    async def main():
        async with open_db(db_url) as db:
            await CredentialStore(db, keyring("old")).put("t", "a", {"v": "x"}, actor="x")
            fresh = CredentialStore(db, keyring("new"))
            with pytest.raises(ConfigurationError) as info:
                await fresh.get("t", "a")
            assert "'old'" in str(info.value)
            assert "rotation" in str(info.value)

    asyncio.run(main())


def test_rotation_rewraps_each_tenant_key_once_and_reports_usage(db_url):
    async def main():
        k1, k2 = key_entry("k1"), key_entry("k2")
        async with open_db(db_url) as db:
            store = CredentialStore(db, MasterKeyring.parse(k1))
            for tenant in ("a", "b", "c"):
                await store.put(tenant, "x", {"v": tenant}, actor="x")
            assert await store.master_key_usage() == {"k1": 3}
            rotated = CredentialStore(db, MasterKeyring.parse(f"{k2},{k1}"))
            assert await rotated.rotate_master_key() == 3
            assert await rotated.rotate_master_key() == 0
            assert await rotated.master_key_usage() == {"k2": 3, "k1": 0}

    asyncio.run(main())


def test_rotation_under_concurrent_reads_loses_nothing_and_old_key_can_go(db_url):
    tenants = [f"tenant-{i}" for i in range(12)]

    async def main():
        k1, k2 = key_entry("k1"), key_entry("k2")
        async with open_db(db_url) as db:
            before = CredentialStore(db, MasterKeyring.parse(k1))
            for tenant in tenants:
                for name in ("sf", "slack"):
                    await before.put(tenant, name, {"v": f"{tenant}/{name}"}, actor="x")

            both = MasterKeyring.parse(f"{k2},{k1}")
            reader = CredentialStore(db, both, cache_ttl=0)
            rotator = CredentialStore(db, both)
            done = asyncio.Event()
            reads = 0

            async def read_loop() -> None:
                nonlocal reads
                while not done.is_set() or reads < 50:
                    for tenant in tenants:
                        reader.clear_cache()  # unwrap whatever is stored right now
                        value = await reader.get_field(tenant, "sf", "v")
                        assert value.reveal() == f"{tenant}/sf"
                        reads += 1
                    await asyncio.sleep(0)

            async def rotate() -> int:
                try:
                    return await rotator.rotate_master_key()
                finally:
                    done.set()

            readers = [asyncio.create_task(read_loop()) for _ in range(3)]
            rotated = await rotate()
            await asyncio.gather(*readers)
            assert rotated == len(tenants)
            assert reads >= 50

            after = CredentialStore(db, MasterKeyring.parse(k2))
            for tenant in tenants:
                for name in ("sf", "slack"):
                    value = await after.get_field(tenant, name, "v")
                    assert value.reveal() == f"{tenant}/{name}"

    asyncio.run(main())
