"""TokenManager: single-flight refresh in and across processes, CAS persistence, reauth, expiry."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from connectors.auth import (
    InMemoryLockProvider,
    InMemoryTokenStore,
    RefreshEvent,
    StoredToken,
    TokenManager,
    TokenSet,
)
from connectors.clock import FakeClock
from connectors.errors import (
    AuthenticationFailed,
    CredentialMissing,
    ReauthorizationRequired,
    ServiceUnavailable,
)
from connectors.secrets import Secret

from ._support import RecordingStore, TokenServer, refresh_grant, router

T, C = "acme-corp", "salesforce"


def make(
    server: TokenServer,
    clock: FakeClock,
    *,
    store: InMemoryTokenStore | None = None,
    locks: InMemoryLockProvider | None = None,
    events: list[RefreshEvent] | None = None,
    **kw,
):
    client = httpx2.AsyncClient(transport=router(server))

    async def hook(event: RefreshEvent) -> None:
        if events is not None:
            events.append(event)

    manager = TokenManager(
        store if store is not None else RecordingStore(),
        locks if locks is not None else InMemoryLockProvider(clock=clock),
        clock=clock,
        on_refresh=hook,
        **kw,
    )
    manager.register(T, C, refresh_grant(client, clock))
    return manager, client


def test_concurrent_refreshes_in_one_process_make_one_token_request():
    async def main():
        clock, server = FakeClock(), TokenServer()
        manager, client = make(server, clock)
        seed = server.seed()
        await manager.install(T, C, seed)
        async with client:
            results = await asyncio.gather(*(manager.refresh(T, C, stale=seed) for _ in range(100)))
        assert server.count == 1
        assert {r.access_token.reveal() for r in results} == server.valid_access
        # A late caller holding the old token gets the new one without another request.
        late = await manager.refresh(T, C, stale=seed)
        assert late.same_access_token(results[0])
        assert server.count == 1

    asyncio.run(main())


def test_fifty_refreshers_in_five_processes_with_rotation_make_one_request_per_round():
    """Several "processes": managers with separate caches sharing one store and one lock."""

    async def main():
        clock, server = FakeClock(), TokenServer(rotate=True, yields=5)
        store, locks = RecordingStore(yields=2), InMemoryLockProvider(clock=clock)
        pairs = [make(server, clock, store=store, locks=locks) for _ in range(5)]
        seed = server.seed()
        await pairs[0][0].install(T, C, seed)
        for manager, _ in pairs:
            assert (await manager.get_token(T, C)).same_access_token(seed)
        try:
            for round_ in range(1, 4):
                stale = [await m.get_token(T, C) for m, _ in pairs]
                results = await asyncio.gather(
                    *(
                        manager.refresh(T, C, stale=stale[i])
                        for i, (manager, _) in enumerate(pairs)
                        for _ in range(10)
                    )
                )
                assert server.count == round_
                assert server.invalid_grants == 0
                newest = server.on_issue[-1]
                assert {r.access_token.reveal() for r in results} == {newest}
                stored = await store.load(T, C)
                assert stored is not None
                assert stored.token.access_token.reveal() == newest
                assert stored.token.refresh_token is not None
                assert stored.token.refresh_token.reveal() == server.valid_refresh
        finally:
            for _, client in pairs:
                await client.aclose()

    asyncio.run(main())


def test_process_with_a_stale_snapshot_adopts_the_stored_token_without_calling_the_endpoint():
    """Airbyte #82783: an operation holding an old token must not reuse the old refresh token."""

    async def main():
        clock, server = FakeClock(), TokenServer(rotate=True)
        store, locks = RecordingStore(), InMemoryLockProvider(clock=clock)
        (a, ca), (b, cb) = (make(server, clock, store=store, locks=locks) for _ in range(2))
        seed = server.seed()
        await a.install(T, C, seed)
        old_b = await b.get_token(T, C)
        await a.refresh(T, C, stale=seed)  # process A rotates
        assert server.count == 1
        fresh = await b.refresh(T, C, stale=old_b)  # process B still holds the seed
        assert server.count == 1
        assert server.invalid_grants == 0
        assert fresh.access_token.reveal() in server.valid_access
        await ca.aclose()
        await cb.aclose()

    asyncio.run(main())


def test_rotated_refresh_token_is_saved_with_cas_before_the_new_token_is_returned():
    async def main():
        clock, server = FakeClock(), TokenServer(rotate=True)
        log: list[tuple[str, str]] = []
        store = RecordingStore(log=log)
        manager, client = make(server, clock, store=store)
        seed = server.seed()
        await manager.install(T, C, seed)
        log.clear()

        async def use() -> None:
            token = await manager.refresh(T, C, stale=seed)
            log.append(("returned", token.access_token.reveal()))

        async with client:
            await use()
        new_access = server.on_issue[-1]
        saves = [i for i, (kind, v) in enumerate(log) if kind == "save" and new_access in v]
        returned = log.index(("returned", new_access))
        assert saves
        assert saves[0] < returned
        assert f"|{server.valid_refresh}|v2" in log[saves[0]][1]

    asyncio.run(main())


def test_invalid_grant_marks_needs_reauth_and_raises_reauthorization_required():
    async def main():
        clock, server = FakeClock(), TokenServer()
        events: list[RefreshEvent] = []
        store = RecordingStore()
        manager, client = make(server, clock, store=store, events=events)
        seed = server.seed()
        server.valid_refresh = "someone-else-rotated-it"
        await manager.install(T, C, seed)
        async with client:
            with pytest.raises(ReauthorizationRequired) as info:
                await manager.refresh(T, C, stale=seed)
        assert info.value.provider_code == "invalid_grant"
        assert info.value.tenant == T
        assert store.needs_reauth(T, C) == "invalid_grant"
        assert [e.outcome for e in events] == ["needs_reauth"]
        assert events[0].error == "invalid_grant"

    asyncio.run(main())


def test_invalid_grant_after_an_out_of_band_rotation_adopts_the_newer_stored_token():
    async def main():
        clock = FakeClock()
        store, locks = InMemoryTokenStore(), InMemoryLockProvider(clock=clock)
        newer = TokenSet(access_token=Secret("newer-access-x9"), refresh_token=Secret("r2-x9"))

        class RacedGrant:
            async def obtain(self, current: TokenSet | None) -> TokenSet:
                # Another writer that did not take our lease rotates the token meanwhile.
                await store.save(T, C, newer, expected_version=1)
                raise ReauthorizationRequired("refused", provider_code="invalid_grant")

        manager = TokenManager(store, locks, clock=clock)
        seed = TokenSet(access_token=Secret("seed-access-x9"), refresh_token=Secret("r1-x9"))
        await manager.install(T, C, seed)
        token = await manager.refresh(T, C, stale=seed, grant=RacedGrant())
        assert token.same_access_token(newer)
        assert store.needs_reauth(T, C) is None

    asyncio.run(main())


def test_cas_conflict_on_save_adopts_the_winner_and_reports_conflict():
    async def main():
        clock = FakeClock()
        store, locks = InMemoryTokenStore(), InMemoryLockProvider(clock=clock)
        winner = TokenSet(access_token=Secret("winner-access-x9"))
        events: list[RefreshEvent] = []

        class SlowGrant:
            async def obtain(self, current: TokenSet | None) -> TokenSet:
                await store.save(T, C, winner, expected_version=1)  # lease expired, say
                return TokenSet(access_token=Secret("loser-access-x9"))

        async def hook(event: RefreshEvent) -> None:
            events.append(event)

        manager = TokenManager(store, locks, clock=clock, on_refresh=hook)
        seed = TokenSet(access_token=Secret("seed-access-x9"))
        await manager.install(T, C, seed)
        token = await manager.refresh(T, C, stale=seed, grant=SlowGrant())
        assert token.same_access_token(winner)
        assert events[-1].outcome == "conflict"
        assert events[-1].version == 2

    asyncio.run(main())


def test_proactive_refresh_happens_within_the_margin_and_not_before():
    async def main():
        clock, server = FakeClock(), TokenServer(expires_in=3600)
        manager, client = make(server, clock, refresh_margin=60.0)
        seed = server.seed()
        seed = TokenSet(
            access_token=seed.access_token,
            refresh_token=seed.refresh_token,
            expires_at=clock.time() + 3600,
        )
        await manager.install(T, C, seed)
        async with client:
            clock.advance(3600 - 120)
            assert (await manager.get_token(T, C)).same_access_token(seed)
            assert server.count == 0
            clock.advance(61)
            fresh = await manager.get_token(T, C)
            assert server.count == 1
            assert not fresh.same_access_token(seed)
            assert fresh.expires_at == pytest.approx(clock.time() + 3600)
            # The new token is good for another hour: no further refresh.
            clock.advance(1800)
            assert (await manager.get_token(T, C)).same_access_token(fresh)
            assert server.count == 1

    asyncio.run(main())


def test_salesforce_style_token_without_expires_in_is_never_refreshed_proactively():
    async def main():
        clock, server = FakeClock(), TokenServer(expires_in=None)
        manager, client = make(server, clock)
        seed = server.seed()
        await manager.install(T, C, seed)
        async with client:
            first = await manager.refresh(T, C, stale=seed)
            assert first.expires_at is None
            assert first.issued_at == pytest.approx(1708058728.442)
            clock.advance(30 * 24 * 3600)
            assert (await manager.get_token(T, C)).same_access_token(first)
            assert server.count == 1

    asyncio.run(main())


def test_transient_failure_of_a_proactive_refresh_keeps_using_the_still_valid_token():
    async def main():
        clock, server = FakeClock(), TokenServer()
        manager, client = make(server, clock, refresh_margin=300.0)
        seed = server.seed()
        seed = TokenSet(
            access_token=seed.access_token,
            refresh_token=seed.refresh_token,
            expires_at=clock.time() + 100,
        )
        await manager.install(T, C, seed)
        server.fail_with = (503, {"error": "temporarily_unavailable"})
        async with client:
            assert (await manager.get_token(T, C)).same_access_token(seed)
            clock.advance(101)
            with pytest.raises(ServiceUnavailable):
                await manager.get_token(T, C)

    asyncio.run(main())


def test_waiter_takes_over_when_the_lock_holder_crashed_and_its_lease_expired():
    async def main():
        clock, server = FakeClock(), TokenServer()
        locks = InMemoryLockProvider(clock=clock)
        manager, client = make(server, clock, locks=locks, lock_ttl=30.0)
        seed = server.seed()
        await manager.install(T, C, seed)
        assert await locks.acquire(TokenManager.lock_key(T, C), owner="crashed", ttl=30.0)
        start = clock.monotonic()
        async with client:
            fresh = await manager.refresh(T, C, stale=seed)
        assert server.count == 1
        assert clock.monotonic() - start >= 30.0
        assert fresh.access_token.reveal() in server.valid_access
        assert locks.holder(TokenManager.lock_key(T, C)) is None

    asyncio.run(main())


def test_waiting_for_a_live_lock_holder_gives_up_after_wait_timeout():
    async def main():
        clock, server = FakeClock(), TokenServer()
        locks = InMemoryLockProvider(clock=clock)
        manager, client = make(server, clock, locks=locks, wait_timeout=5.0)
        seed = server.seed()
        await manager.install(T, C, seed)
        await locks.acquire(TokenManager.lock_key(T, C), owner="busy", ttl=1000.0)
        async with client:
            with pytest.raises(ServiceUnavailable) as info:
                await manager.refresh(T, C, stale=seed)
        assert info.value.provider_code == "refresh_lock_timeout"
        assert server.count == 0

    asyncio.run(main())


def test_tenants_with_the_same_credential_name_are_isolated():
    async def main():
        clock = FakeClock()
        server_a, server_b = TokenServer(prefix="a"), TokenServer(prefix="b")
        store, locks = InMemoryTokenStore(), InMemoryLockProvider(clock=clock)
        manager = TokenManager(store, locks, clock=clock)
        client_a = httpx2.AsyncClient(transport=router(server_a))
        client_b = httpx2.AsyncClient(transport=router(server_b))
        manager.register("tenant-a", C, refresh_grant(client_a, clock))
        manager.register("tenant-b", C, refresh_grant(client_b, clock))
        seed_a, seed_b = server_a.seed(), server_b.seed()
        await manager.install("tenant-a", C, seed_a)
        await manager.install("tenant-b", C, seed_b)
        async with client_a, client_b:
            await manager.refresh("tenant-a", C, stale=seed_a)
        assert (await manager.get_token("tenant-b", C)).same_access_token(seed_b)
        assert server_a.count == 1
        assert server_b.count == 0
        assert TokenManager.lock_key("a:b", "c") != TokenManager.lock_key("a", "b:c")

    asyncio.run(main())


def test_refresh_events_carry_outcome_and_version_and_a_failing_hook_does_not_break_refresh():
    async def main():
        clock, server = FakeClock(), TokenServer()
        events: list[RefreshEvent] = []
        manager, client = make(server, clock, events=events)
        seed = server.seed()
        await manager.install(T, C, seed)
        async with client:
            await manager.refresh(T, C, stale=seed)
        assert [(e.tenant, e.credential, e.outcome, e.version) for e in events] == [
            (T, C, "refreshed", 2)
        ]

        async def broken(event: RefreshEvent) -> None:
            raise RuntimeError("audit sink down")

        manager.on_refresh = broken
        async with httpx2.AsyncClient(transport=router(server)) as client2:
            current = await manager.get_token(T, C)
            fresh = await manager.refresh(T, C, stale=current, grant=refresh_grant(client2, clock))
        assert not fresh.same_access_token(current)

    asyncio.run(main())


def test_missing_token_without_grant_is_credential_missing_and_unrenewable_token_fails():
    async def main():
        clock = FakeClock()
        manager = TokenManager(InMemoryTokenStore(), InMemoryLockProvider(clock=clock), clock=clock)
        with pytest.raises(CredentialMissing):
            await manager.get_token(T, C)
        token = TokenSet(access_token=Secret("static-access-x9"))
        await manager.install(T, C, token)
        assert (await manager.get_token(T, C)).same_access_token(token)
        with pytest.raises(AuthenticationFailed):
            await manager.refresh(T, C, stale=token)

    asyncio.run(main())


def test_client_credentials_style_grant_obtains_a_first_token_when_nothing_is_stored():
    async def main():
        clock = FakeClock()
        store = InMemoryTokenStore()
        calls = 0

        class Issue:
            async def obtain(self, current: TokenSet | None) -> TokenSet:
                nonlocal calls
                calls += 1
                await asyncio.sleep(0)
                return TokenSet(access_token=Secret("cc-access-x9"), expires_at=clock.time() + 60)

        manager = TokenManager(store, InMemoryLockProvider(clock=clock), clock=clock)
        manager.register(T, C, Issue())
        tokens = await asyncio.gather(*(manager.get_token(T, C) for _ in range(20)))
        assert calls == 1
        assert all(t.access_token.reveal() == "cc-access-x9" for t in tokens)
        assert await store.load(T, C) == StoredToken(tokens[0], 1)

    asyncio.run(main())


def test_a_cancelled_caller_does_not_cancel_the_shared_refresh():
    async def main():
        clock, server = FakeClock(), TokenServer(yields=10)
        manager, client = make(server, clock)
        seed = server.seed()
        await manager.install(T, C, seed)
        async with client:
            first = asyncio.ensure_future(manager.refresh(T, C, stale=seed))
            second = asyncio.ensure_future(manager.refresh(T, C, stale=seed))
            await asyncio.sleep(0)
            first.cancel()
            fresh = await second
            with pytest.raises(asyncio.CancelledError):
                await first
        assert server.count == 1
        assert fresh.access_token.reveal() in server.valid_access

    asyncio.run(main())


def test_install_is_compare_and_swap_safe_and_updates_the_cache():
    async def main():
        clock = FakeClock()
        store = InMemoryTokenStore()
        manager = TokenManager(store, InMemoryLockProvider(clock=clock), clock=clock)
        one = TokenSet(access_token=Secret("first-access-x9"))
        two = TokenSet(access_token=Secret("second-access-x9"))
        assert await manager.install(T, C, one) == 1
        assert await manager.install(T, C, two) == 2
        assert (await manager.get_token(T, C)).same_access_token(two)

    asyncio.run(main())


def test_invalid_configuration_is_rejected():
    store, locks = InMemoryTokenStore(), InMemoryLockProvider()
    with pytest.raises(ValueError, match="lock_ttl"):
        TokenManager(store, locks, lock_ttl=0)
    manager = TokenManager(store, locks)
    with pytest.raises(ValueError, match="non-empty"):
        asyncio.run(manager.get_token("", C))


def test_threads_each_running_a_loop_share_one_manager_and_make_one_token_request():
    """Invariant 4 for threads: per-loop coalescing plus the lease (one owner per attempt)."""
    import threading

    from connectors.auth import ClientCredentials, RefreshTokenGrant, TokenEndpoint
    from connectors.clock import SystemClock

    from ._support import TOKEN_URL, form_of, json_response

    issued: list[str] = []
    requests: list[str] = []
    mutex = threading.Lock()
    valid = {"refresh": "thread-refresh-0-x9"}

    async def handle(request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0.01)  # hold the lease long enough for the other thread to wait
        form = form_of(request)
        with mutex:
            requests.append(form["refresh_token"])
            if form["refresh_token"] != valid["refresh"]:
                return json_response(400, {"error": "invalid_grant"})
            n = len(issued) + 1
            issued.append(f"thread-access-{n}-x9")
            valid["refresh"] = f"thread-refresh-{n}-x9"
            return json_response(
                200, {"access_token": issued[-1], "refresh_token": valid["refresh"]}
            )

    clock = SystemClock()
    store, locks = InMemoryTokenStore(), InMemoryLockProvider(clock=clock)
    manager = TokenManager(store, locks, clock=clock, poll_interval=0.002)
    seed = TokenSet(
        access_token=Secret("thread-access-0-x9"), refresh_token=Secret(valid["refresh"])
    )
    asyncio.run(manager.install(T, C, seed))
    manager.forget(T, C)  # every thread starts from the store, like a fresh worker
    errors: list[BaseException] = []

    def worker() -> None:
        async def main() -> None:
            async with httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client:
                grant = RefreshTokenGrant(
                    TokenEndpoint(
                        TOKEN_URL,
                        client=client,
                        credentials=ClientCredentials("cid", Secret("csecret-x9")),
                        clock=clock,
                    )
                )
                await asyncio.gather(
                    *(manager.refresh(T, C, stale=seed, grant=grant) for _ in range(10))
                )

        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert len(requests) == 1
    assert len(issued) == 1
    stored = asyncio.run(store.load(T, C))
    assert stored is not None
    assert stored.token.access_token.reveal() == issued[0]
