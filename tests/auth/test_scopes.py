"""Scope checks: ScopeDenied before any I/O, hierarchies, the union a definition requests."""

from __future__ import annotations

import asyncio

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.auth import (
    SALESFORCE_SCOPES,
    InMemoryLockProvider,
    InMemoryTokenStore,
    ManagedTokenAuth,
    ScopeHierarchy,
    TokenManager,
    TokenSet,
    check_scopes,
    missing_scopes,
    union_of_operation_scopes,
)
from connectors.clock import FakeClock
from connectors.errors import ScopeDenied
from connectors.secrets import Secret

SCOPE = st.from_regex(r"[a-z]{1,6}(:[a-z]{1,6})?", fullmatch=True)


def test_scope_denied_lists_the_missing_scopes_with_context():
    with pytest.raises(ScopeDenied) as info:
        check_scopes(
            ["chat:write", "files:write", "channels:read"],
            ["channels:read"],
            connector="slack",
            tenant="acme-corp",
            operation="upload_file",
        )
    err = info.value
    assert err.missing == ("chat:write", "files:write")
    assert (err.connector, err.tenant, err.operation) == ("slack", "acme-corp", "upload_file")
    assert "chat:write, files:write" in str(err)
    assert "upload_file" in str(err)


def test_granted_scopes_pass_silently():
    check_scopes(["api"], ["api", "web"], connector="sf", tenant="t", operation="query")
    check_scopes([], [], connector="sf", tenant="t", operation="noop")


def test_scope_denied_happens_before_any_request_is_sent():
    async def main():
        clock = FakeClock()
        store = InMemoryTokenStore()
        manager = TokenManager(store, InMemoryLockProvider(clock=clock), clock=clock)
        await manager.install(
            "t",
            "slack",
            TokenSet(access_token=Secret("xoxb-canary-x9"), scopes=frozenset({"channels:read"})),
        )
        sent: list[httpx2.Request] = []
        transport = httpx2.MockTransport(lambda r: sent.append(r) or httpx2.Response(200))
        auth = ManagedTokenAuth(manager, "t", "slack")
        async with httpx2.AsyncClient(transport=transport, auth=auth) as client:
            token = await manager.get_token("t", "slack")

            async def post_message() -> None:
                # What the @operation wrapper does: check the scopes, then send.
                check_scopes(
                    ["chat:write"], token.scopes, connector="slack", tenant="t", operation="post"
                )
                await client.post("https://slack.example.test/api/chat.postMessage")

            with pytest.raises(ScopeDenied):
                await post_message()
        assert sent == []

    asyncio.run(main())


def test_salesforce_full_implies_api_but_not_refresh_token():
    check_scopes(
        ["api", "web"],
        ["full"],
        connector="sf",
        tenant="t",
        operation="q",
        hierarchy=SALESFORCE_SCOPES,
    )
    with pytest.raises(ScopeDenied) as info:
        check_scopes(
            ["refresh_token"],
            ["full"],
            connector="sf",
            tenant="t",
            operation="q",
            hierarchy=SALESFORCE_SCOPES,
        )
    assert info.value.missing == ("refresh_token",)
    assert missing_scopes(["api"], ["full"]) == ("api",)  # without the hierarchy
    assert SALESFORCE_SCOPES.expand(["email"]) >= {"id", "profile", "phone"}


def test_hierarchy_is_transitive_and_handles_cycles():
    h = ScopeHierarchy.of({"admin": ["write"], "write": ["read"], "read": ["admin"]})
    assert h.expand(["write"]) == {"write", "read", "admin"}
    assert ScopeHierarchy.of({"a": ["b"]}).expand(["b"]) == {"b"}


def test_union_of_operation_scopes_from_mapping_or_groups():
    ops = {"query": ["api"], "post": ["chat:write"], "upload": ["files:write", "chat:write"]}
    assert union_of_operation_scopes(ops) == {"api", "chat:write", "files:write"}
    assert union_of_operation_scopes([["a"], [], ["b", "a"]]) == {"a", "b"}
    with pytest.raises(TypeError):
        union_of_operation_scopes(["api"])  # a bare string per operation is a bug
    with pytest.raises(TypeError):
        check_scopes("api", ["api"], connector=None, tenant=None, operation=None)


@given(needed=st.sets(SCOPE, max_size=6), granted=st.sets(SCOPE, max_size=6))
def test_check_passes_exactly_when_needed_is_a_subset(needed, granted):
    if needed <= granted:
        check_scopes(needed, granted, connector="c", tenant="t", operation="o")
    else:
        with pytest.raises(ScopeDenied) as info:
            check_scopes(needed, granted, connector="c", tenant="t", operation="o")
        assert set(info.value.missing) == needed - granted


@given(ops=st.dictionaries(st.text(min_size=1, max_size=5), st.sets(SCOPE, max_size=4), max_size=5))
def test_the_union_covers_every_operation(ops):
    union = union_of_operation_scopes(ops)
    for needed in ops.values():
        check_scopes(needed, union, connector="c", tenant="t", operation="o")
    expected = frozenset().union(*ops.values()) if ops else frozenset()
    assert union == expected
