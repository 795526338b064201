"""The Salesforce connector's operations against the emulated org, in process."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import sys
from typing import Any

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.salesforce import SaveResult
from connectors.adapters.salesforce.paging import sniff_next_url
from connectors.errors import (
    AuthenticationFailed,
    Conflict,
    IncompatibleVersion,
    InvalidRequest,
    NotFound,
)
from connectors.observability.health import HealthStatus
from connectors.testing.faults import FaultInjector
from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec

from .conftest import KeyPair, SfEnv, make_env


def test_query_binds_parameters_and_returns_every_record(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            created = await sf.create("Contact", {"LastName": "O'Brien", "Email": "o'b@x.io"})
            found = await sf.query(
                "SELECT Id, Email FROM Contact WHERE Email = :email", email="o'b@x.io"
            )
            assert [r["Id"] for r in found] == [created.id]
            assert len(await sf.query("SELECT Id FROM Contact")) == 26

    sf_env.run(main)


def test_query_refuses_to_materialise_more_than_max_materialize(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open(sf_env.jwt_settings(max_materialize=10)) as sf:
            with pytest.raises(InvalidRequest, match="query_iter") as info:
                await sf.query("SELECT Id FROM Contact")
            assert info.value.provider_code == "TOO_MANY_RECORDS"
            assert len(await sf.query("SELECT Id FROM Contact LIMIT 10")) == 10

    sf_env.run(main)


def test_query_iter_streams_pages_with_the_requested_batch_size(
    key_pair: KeyPair, tmp_path
) -> None:
    env = make_env(key_pair, tmp_path, SalesforceEmulatorConfig(seed=SeedSpec(contacts=450)))

    async def main() -> None:
        async with env.open() as sf:
            ids = [r["Id"] async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)]
            assert len(ids) == len(set(ids)) == 450

    env.run(main)
    pages = [p for m, p, s in env.emulator.requests if "/query" in p]
    assert len(pages) == 3  # 200 + 200 + 50
    env.emulator.close()


def test_session_expiry_between_pages_refreshes_and_continues(key_pair, tmp_path) -> None:
    env = make_env(key_pair, tmp_path, SalesforceEmulatorConfig(seed=SeedSpec(contacts=600)))
    inner = env.emulator.app
    expired_at: list[str] = []

    async def expire_before_later_pages(scope: Any, receive: Any, send: Any) -> None:
        # The session dies just before each later page is asked for (a prefetched page is asked
        # for before the caller has read the previous one, so the caller cannot time this).
        path = scope.get("path", "")
        if "/query/" in path and path not in expired_at:
            expired_at.append(path)
            assert env.emulator.expire_all_sessions() >= 1
        await inner(scope, receive, send)

    hub = env.make_hub(expire_before_later_pages)
    env.hub = hub

    async def main() -> int:
        async with env.open(hub=hub) as sf:
            return len([r async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)])

    assert env.run(main) == 600
    assert len(expired_at) == 2  # pages 2 and 3
    statuses = [s for m, p, s in env.emulator.requests if "/query" in p]
    assert statuses.count(401) == 2
    env.emulator.close()


# --- query paging: the next page is asked for while the caller reads this one (paging.py) ----


class _Pages:
    """ASGI middleware over the emulator: records query paths, can hold or rewrite a page."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.paths: list[str] = []
        self.hold: asyncio.Event | None = None  # later pages wait for it
        self.cancelled = 0
        self.first_page_prefix = b""  # bytes put at the start of the first page's body

    def later(self) -> list[str]:
        return [p for p in self.paths if "/query/" in p]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if "/query" not in path:
            await self.app(scope, receive, send)
            return
        self.paths.append(path)
        if "/query/" in path and self.hold is not None:
            try:
                await self.hold.wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        if path.endswith("/query") and self.first_page_prefix:
            send = self._prefixed(send)
        await self.app(scope, receive, send)

    def _prefixed(self, send: Any) -> Any:
        async def prefixed(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = str(len(self.first_page_prefix)).encode()
                headers = []
                for name, value in message["headers"]:
                    if name.lower() == b"content-length":
                        value = str(int(value) + int(extra)).encode()
                    headers.append((name, value))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                message = {**message, "body": b"{" + self.first_page_prefix + body[1:]}
            await send(message)

        return prefixed


def _paged_env(key_pair: KeyPair, tmp_path: Any, contacts: int) -> tuple[SfEnv, _Pages]:
    env = make_env(key_pair, tmp_path, SalesforceEmulatorConfig(seed=SeedSpec(contacts=contacts)))
    pages = _Pages(env.emulator.app)
    env.hub = env.make_hub(pages)
    return env, pages


async def _spin(turns: int = 200) -> None:
    """Let other tasks run (a fixed number of loop turns, no wall-clock wait)."""
    for _ in range(turns):
        await asyncio.sleep(0)


def test_query_iter_asks_for_the_next_page_while_the_caller_reads_this_one(
    key_pair: KeyPair, tmp_path: Any
) -> None:
    env, pages = _paged_env(key_pair, tmp_path, 650)

    async def main() -> list[str]:
        ids: list[str] = []
        async with env.open(hub=env.hub) as sf:
            async for record in sf.query_iter("SELECT Id FROM Contact", batch_size=200):
                if not ids:
                    await _spin()
                    # Page 2 is on its way before page 1 is read; page 3 waits for page 2.
                    assert [p.rsplit("-", 1)[-1] for p in pages.later()] == ["200"]
                ids.append(str(record["Id"]))
        return ids

    ids = env.run(main)
    assert len(ids) == len(set(ids)) == 650
    assert [p.rsplit("-", 1)[-1] for p in pages.later()] == ["200", "400", "600"]
    env.emulator.close()


def test_query_iter_stopped_early_cancels_the_page_it_asked_for_ahead(
    key_pair: KeyPair, tmp_path: Any
) -> None:
    env, pages = _paged_env(key_pair, tmp_path, 450)
    pages.hold = asyncio.Event()  # page 2 never comes back on its own

    async def main() -> None:
        async with env.open(hub=env.hub) as sf:
            stream = sf.query_iter("SELECT Id FROM Contact", batch_size=200)
            async with contextlib.aclosing(stream):
                async for _ in stream:
                    await _spin()
                    break
            assert len(pages.later()) == 1
            assert pages.cancelled == 1
            assert asyncio.all_tasks() == {asyncio.current_task()}

    env.run(main)
    env.emulator.close()


def test_query_iter_lets_a_read_page_go_before_the_next_is_decoded(
    key_pair: KeyPair, tmp_path: Any
) -> None:
    # A page still referenced while the next is decoded survives the collections that decoding
    # triggers and is promoted; promotions are what bring on full (slow) collections.
    env, _ = _paged_env(key_pair, tmp_path, 4000)
    kept: list[object] = []  # the first record of page 1, held by the test alone
    refs_while_decoding: list[int] = []
    past_page_1 = False

    def on_collection(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and past_page_1:
            refs_while_decoding.append(sys.getrefcount(kept[0]))

    async def main() -> int:
        nonlocal past_page_1
        count = 0
        async with env.open(hub=env.hub) as sf:
            async for record in sf.query_iter("SELECT Id FROM Contact", batch_size=2000):
                count += 1
                if count == 1:
                    kept.append(record)
                elif count == 2000:
                    past_page_1 = True  # the next step decodes page 2
                elif count == 2001:
                    past_page_1 = False
                    refs_when_gone = sys.getrefcount(kept[0])
                    assert refs_while_decoding  # decoding 2,000 records collects
                    assert set(refs_while_decoding) == {refs_when_gone}
        return count

    gc.callbacks.append(on_collection)
    try:
        assert env.run(main) == 4000
    finally:
        gc.callbacks.remove(on_collection)
    env.emulator.close()


def test_an_error_on_a_page_fetched_ahead_is_raised_when_the_caller_reaches_it(
    key_pair: KeyPair, tmp_path: Any
) -> None:
    env = make_env(key_pair, tmp_path, SalesforceEmulatorConfig(seed=SeedSpec(contacts=450)))
    inner = env.emulator.app

    async def lose_cursors(scope: Any, receive: Any, send: Any) -> None:
        if "/query/" in scope.get("path", ""):
            env.emulator.queries.cursors.clear()  # the locator expired
        await inner(scope, receive, send)

    env.hub = env.make_hub(lose_cursors)
    seen: list[object] = []

    async def main() -> None:
        async with env.open(hub=env.hub) as sf:

            async def read_all() -> None:
                async for record in sf.query_iter("SELECT Id FROM Contact", batch_size=200):
                    seen.append(record["Id"])

            with pytest.raises(InvalidRequest) as info:
                await read_all()
            assert info.value.provider_code == "INVALID_QUERY_LOCATOR"

    env.run(main)
    assert len(seen) == 200  # every record of page 1 first
    env.emulator.close()


def test_query_iter_follows_the_page_s_own_next_url_when_the_early_guess_differs(
    key_pair: KeyPair, tmp_path: Any
) -> None:
    env, pages = _paged_env(key_pair, tmp_path, 450)
    # A duplicate key: the bytes name a decoy first, the decoded page keeps the real (last) one.
    pages.first_page_prefix = b'"nextRecordsUrl":"/services/data/v62.0/query/01gDecoy-7",'

    async def main() -> list[object]:
        async with env.open(hub=env.hub) as sf:
            return [r["Id"] async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)]

    ids = env.run(main)
    assert len(ids) == len(set(ids)) == 450
    followed = [p for p in pages.later() if "Decoy" not in p]
    assert [p.rsplit("-", 1)[-1] for p in followed] == ["200", "400"]
    env.emulator.close()


def test_query_materialises_every_page_fetched_ahead(key_pair: KeyPair, tmp_path: Any) -> None:
    env, pages = _paged_env(key_pair, tmp_path, 4500)

    async def main() -> int:
        async with env.open(hub=env.hub) as sf:
            return len({r["Id"] for r in await sf.query("SELECT Id FROM Contact")})

    assert env.run(main) == 4500
    assert [p.rsplit("-", 1)[-1] for p in pages.later()] == ["2000", "4000"]
    env.emulator.close()


@given(
    st.fixed_dictionaries(
        {"totalSize": st.integers(0, 10**6), "done": st.booleans()},
        optional={
            "nextRecordsUrl": st.from_regex(
                r"/services/data/v6[0-2]\.0/query/01g[A-Za-z0-9]{15}-[0-9]{1,6}", fullmatch=True
            )
        },
    ),
    st.lists(
        st.dictionaries(
            st.text(max_size=20), st.text(max_size=40) | st.integers() | st.none(), max_size=4
        ),
        max_size=4,
    ),
    st.booleans(),
    st.integers(0, 2),
)
def test_sniffing_the_next_url_never_names_another_page(
    head: dict[str, object], records: list[dict[str, object]], pretty: bool, records_at: int
) -> None:
    keys = list(head.items())
    keys.insert(min(records_at, len(keys)), ("records", records))
    body = json.dumps(dict(keys), indent=2 if pretty else None).encode()
    names = [name for name, _ in keys]
    url = head.get("nextRecordsUrl")
    before_records = url is not None and names.index("nextRecordsUrl") < names.index("records")
    assert sniff_next_url(body) == (url if before_records else None)


@given(st.binary(max_size=300))
def test_sniffing_arbitrary_bytes_does_not_raise(body: bytes) -> None:
    result = sniff_next_url(body)
    assert result is None or (result and '"' not in result)


def test_sniffing_reads_salesforce_s_own_page_layout() -> None:
    page = (
        b'{\n  "totalSize" : 2,\n  "done" : false,\n  "nextRecordsUrl" : '
        b'"/services/data/v26.0/query/01gD",\n  "records" : [ ] }'
    )
    assert sniff_next_url(page) == "/services/data/v26.0/query/01gD"
    assert sniff_next_url(b'{"totalSize":2,"done":true,"records":[]}') is None
    assert sniff_next_url(b'{"records":[{"nextRecordsUrl":"/x"}],"done":false}') is None


def test_query_all_includes_deleted_records_and_count_counts(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            made = await sf.create("Lead", {"LastName": "Gone", "Company": "X"})
            assert made.id is not None
            await sf.delete("Lead", made.id)
            live = await sf.query("SELECT Id FROM Lead WHERE Id = :id", id=made.id)
            every = await sf.query_all("SELECT Id FROM Lead WHERE Id = :id", id=made.id)
            assert (len(live), len(every)) == (0, 1)
            assert await sf.count("Contact") == 25
            assert await sf.count("Contact", "LastName = :n", n="nobody-has-this") == 0

    sf_env.run(main)


def test_crud_round_trip(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            made = await sf.create("Account", {"Name": "Acme"})
            assert isinstance(made, SaveResult)
            assert made.success
            assert made.id
            await sf.update("Account", made.id, {"Name": "Acme 2"})
            got = await sf.get("Account", made.id, fields=["Id", "Name"])
            assert got["Name"] == "Acme 2"
            await sf.delete("Account", made.id)
            await sf.delete("Account", made.id)  # already deleted: done, not an error
            with pytest.raises(NotFound) as info:
                await sf.get("Account", "001000000000000AAA")
            assert info.value.provider_code == "NOT_FOUND"

    sf_env.run(main)


def test_upsert_creates_updates_and_reports_ambiguous_matches(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            first = await sf.upsert("Contact", "External_Id__c", "ext-1 a", {"LastName": "A"})
            again = await sf.upsert("Contact", "External_Id__c", "ext-1 a", {"LastName": "B"})
            assert (first.created, again.created, first.id) == (True, False, again.id)
            sf_env.emulator.insert("Contact", {"LastName": "C", "External_Id__c": "dup"})
            sf_env.emulator.insert("Contact", {"LastName": "D", "External_Id__c": "dup"})
            with pytest.raises(Conflict) as info:
                await sf.upsert("Contact", "External_Id__c", "dup", {"LastName": "E"})
            assert len(info.value.candidates) == 2
            assert all(c.startswith("003") for c in info.value.candidates)

    sf_env.run(main)


def test_field_errors_become_invalid_request_with_field_details(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            with pytest.raises(InvalidRequest) as info:
                await sf.create("Lead", {"FirstName": "No last name"})
            assert info.value.provider_code == "REQUIRED_FIELD_MISSING"
            assert {f.field for f in info.value.fields} >= {"LastName"}
            with pytest.raises(InvalidRequest) as bad:
                await sf.query("SELECT Nope__c FROM Contact")
            assert bad.value.provider_code == "INVALID_FIELD"
            with pytest.raises(InvalidRequest) as bad_type:
                await sf.query("SELECT Id FROM Nothing__c")
            assert bad_type.value.provider_code == "INVALID_TYPE"

    sf_env.run(main)


def test_describe_describe_global_and_limits(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            described = await sf.describe("Contact")
            assert described["name"] == "Contact"
            names = {o["name"] for o in (await sf.describe_global())["sobjects"]}  # type: ignore[union-attr]
            assert {"Account", "Contact", "Lead"} <= names
            limits = await sf.limits()
            assert limits["DailyApiRequests"]["Max"] == 100_000

    sf_env.run(main)


def test_unsupported_api_version_fails_at_connect_listing_supported_ones(sf_env: SfEnv) -> None:
    async def main() -> None:
        with pytest.raises(IncompatibleVersion, match=r"31\.0") as info:
            async with sf_env.open(sf_env.jwt_settings(api_version="25.0")):
                pass
        assert "62.0" in str(info.value)

    sf_env.run(main)


def test_health_reports_auth_and_quota_and_degrades_when_quota_runs_low(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            health = await sf.health_check()
            assert {c.name for c in health.checks} == {"auth", "api_quota"}
            assert health.status is HealthStatus.HEALTHY
            sf_env.emulator.set_api_quota(1000, 950)
            health = await sf.health_check()
            assert health.check("api_quota").status is HealthStatus.DEGRADED  # type: ignore[union-attr]
            assert sf_env.hub.metrics.value(
                "connector_rate_limit_remaining",
                connector="salesforce",
                tenant="acme-corp",
                quota="api-usage",
            ) in (48.0, 49.0)

    sf_env.run(main)


def test_throttling_adds_a_rate_limit_when_quota_is_low(sf_env: SfEnv) -> None:
    async def main() -> None:
        settings = sf_env.jwt_settings(throttle_below_pct=20, throttle_rate=2)
        async with sf_env.open(settings) as sf:
            sf_env.emulator.set_api_quota(1000, 900)
            start = sf_env.clock.monotonic()
            for _ in range(5):
                await sf.limits()
            elapsed = sf_env.clock.monotonic() - start
            assert elapsed >= 1.5  # five calls at 2/s after the first

    sf_env.run(main)


def test_the_not_refreshable_session_variant_is_reported_as_such(sf_env: SfEnv) -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            401,
            json=[
                {
                    "message": "This session is not valid for use with the REST API",
                    "errorCode": "INVALID_SESSION_ID",
                }
            ],
        )

    async def main() -> None:
        async with sf_env.open() as sf:
            # Both send paths: httpx2's own and the client's direct one (connectors.http.send).
            sf.http._client._transport = sf.http._transport = httpx2.MockTransport(refuse)
            with pytest.raises(AuthenticationFailed, match="refresh cannot fix"):
                await sf.limits()

    sf_env.run(main)


def test_injected_faults_idempotent_calls_succeed_and_creates_never_duplicate(
    key_pair: KeyPair, tmp_path
) -> None:
    env = make_env(key_pair, tmp_path)
    injector = FaultInjector(
        env.emulator.app,
        "5xx=0.2:paths=/services/data/*,429=0.1:retry_after=0.1:paths=/services/data/*,"
        "drop=0.05:paths=/services/data/*,drop_after=0.05:paths=/services/data/*",
        seed=7,
        clock=env.clock,
    )
    hub = env.make_hub(injector)
    env.hub = hub
    outcomes: list[str] = []

    async def main() -> None:
        async with env.open(env.jwt_settings(), hub=hub) as sf:
            injector.clear()
            injector.set(
                "5xx=0.2:paths=/services/data/v*,429=0.1:retry_after=0.1:paths=/services/data/v*,"
                "drop=0.05:paths=/services/data/v*,drop_after=0.05:paths=/services/data/v*"
            )
            for i in range(60):
                try:
                    result = await sf.create(
                        "Lead", {"LastName": f"F{i}", "Company": "C", "External_Id__c": f"f{i}"}
                    )
                    outcomes.append("ok" if result.success else "failed")
                except Exception as exc:
                    outcomes.append(type(exc).__name__)
            for _ in range(20):
                assert len(await sf.query("SELECT Id FROM Contact LIMIT 5")) == 5
                await sf.limits()
            injector.clear()
            leads = await sf.query("SELECT External_Id__c FROM Lead")
            keys = [r["External_Id__c"] for r in leads]
            assert len(keys) == len(set(keys))  # no create ran twice
            assert outcomes.count("ok") <= len(keys) <= 60

    env.run(main)
    assert injector.counters["5xx"] > 0
    assert injector.counters["drop"] + injector.counters["drop_after"] > 0
    env.emulator.close()
