"""Invariant 3: no sequence of operations lets one tenant resolve another tenant's secret.

Random sequences of put/get/delete/list/resolve over a few tenants sharing credential names run
against a real store (SQLite, cache on or off) and are checked against a model. Every value
embeds the tenant that stored it, so a leak shows as a value with the wrong prefix.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.errors import Conflict, CredentialMissing
from connectors.secrets.refs import SecretRef
from connectors.secrets.resolvers import ResolverRegistry
from connectors.secrets.store import CredentialStore
from connectors.storage.db import Database

from ._support import keyring, open_db

TENANTS = ["acme", "globex", "initech"]
NAMES = ["sf", "slack", "db/main"]

_tenant = st.sampled_from(TENANTS)
_name = st.sampled_from(NAMES)


@dataclass(frozen=True)
class Op:
    kind: str
    tenant: str
    name: str = ""
    cas: bool = False


_ops = st.lists(
    st.one_of(
        st.builds(Op, st.just("put"), _tenant, _name, st.booleans()),
        st.builds(Op, st.just("get"), _tenant, _name),
        st.builds(Op, st.just("delete"), _tenant, _name),
        st.builds(Op, st.just("list"), _tenant),
        st.builds(Op, st.just("resolve"), _tenant, _name),
        st.builds(Op, st.just("advance"), _tenant),
    ),
    max_size=30,
)


async def _run(db: Database, ops: list[Op], cache_ttl: float, run_id: int) -> None:
    """One example: fresh tenants (``<tenant>-<run_id>``) in a shared database."""
    clock = FakeClock()
    tenants = {t: f"{t}-{run_id}" for t in TENANTS}
    ops = [Op(op.kind, tenants[op.tenant], op.name, op.cas) for op in ops]
    store = CredentialStore(db, keyring(), clock=clock, cache_ttl=cache_ttl)
    registry = ResolverRegistry.with_builtins(store, environ={}, discover=False)
    model: dict[tuple[str, str], tuple[str, int]] = {}
    versions: dict[tuple[str, str], int] = {}
    counter = 0
    for op in ops:
        key = (op.tenant, op.name)
        if op.kind == "put":
            counter += 1
            value = f"{op.tenant}|{op.name}|{counter}"
            expected = model[key][1] if key in model else 0
            version = await store.put(
                op.tenant,
                op.name,
                {"value": value},
                actor="prop",
                expected_version=expected if op.cas else None,
            )
            assert version == versions.get(key, 0) + 1
            versions[key] = version
            model[key] = (value, version)
        elif op.kind in ("get", "resolve"):
            try:
                if op.kind == "get":
                    secret = await store.get_field(op.tenant, op.name)
                else:
                    ref = SecretRef("secret", op.name)
                    secret = await registry.resolve(ref, tenant=op.tenant)
            except CredentialMissing as exc:
                missing_for = exc.tenant
                secret = None
            if secret is None:
                assert key not in model
                assert missing_for == op.tenant
                continue
            value = secret.reveal()
            assert value.startswith(f"{op.tenant}|"), "another tenant's value leaked"
            assert key in model
            assert value == model[key][0]
        elif op.kind == "delete":
            try:
                version = await store.delete(op.tenant, op.name, actor="prop")
            except CredentialMissing:
                assert key not in model
                continue
            assert key in model
            del model[key]
            versions[key] = version
        elif op.kind == "list":
            listed = await store.list(op.tenant)
            assert all(info.tenant == op.tenant for info in listed)
            assert [i.name for i in listed] == sorted(n for t, n in model if t == op.tenant)
        else:
            clock.advance(cache_ttl + 1)
    # Finally every tenant sees exactly its own values, by every path.
    for tenant in tenants.values():
        for name in NAMES:
            via_store = await _value_or_none(store, tenant, name)
            via_ref = await _resolved_or_none(registry, tenant, name)
            expected_value = model.get((tenant, name), (None, 0))[0]
            assert via_store == expected_value
            assert via_ref == expected_value


async def _value_or_none(store: CredentialStore, tenant: str, name: str) -> str | None:
    try:
        return (await store.get_field(tenant, name, fresh=True)).reveal()
    except CredentialMissing:
        return None


async def _resolved_or_none(registry: ResolverRegistry, tenant: str, name: str) -> str | None:
    try:
        return (await registry.resolve(SecretRef("secret", name), tenant=tenant)).reveal()
    except CredentialMissing:
        return None


def test_no_operation_sequence_resolves_another_tenants_secret(db_url):
    # One event loop and one database for all examples; each example uses fresh tenant ids.
    with asyncio.Runner() as runner:
        db = Database(db_url)
        runner.run(db.create_all())
        run_ids = itertools.count()

        @settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(ops=_ops, cache_ttl=st.sampled_from([0.0, 60.0]))
        def check(ops: list[Op], cache_ttl: float) -> None:
            runner.run(_run(db, ops, cache_ttl, next(run_ids)))

        try:
            check()
        finally:
            runner.run(db.dispose())


def test_compare_and_swap_state_of_one_tenant_does_not_affect_another(db_url):
    async def main():
        async with open_db(db_url) as db:
            store = CredentialStore(db, keyring())
            await store.put("acme", "token", {"value": "a1"}, actor="x")
            await store.put("acme", "token", {"value": "a2"}, actor="x")
            # globex has no "token" yet, whatever acme's version is.
            assert await store.put("globex", "token", {"value": "g"}, actor="x", expected_version=0)
            with pytest.raises(Conflict):
                await store.put("globex", "token", {"value": "g"}, actor="x", expected_version=2)

    asyncio.run(main())
