"""The Salesforce connector's operations against the emulated org, in process."""

from __future__ import annotations

import httpx2
import pytest

from connectors.adapters.salesforce import SaveResult, Subrequest
from connectors.errors import (
    AuthenticationFailed,
    Conflict,
    IncompatibleVersion,
    InvalidRequest,
    NotFound,
    RateLimited,
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

    async def main() -> int:
        count = 0
        async with env.open() as sf:
            async for _ in sf.query_iter("SELECT Id FROM Contact", batch_size=200):
                count += 1
                if count in (200, 400):
                    assert env.emulator.expire_all_sessions() >= 1
        return count

    assert env.run(main) == 600
    statuses = [s for m, p, s in env.emulator.requests if "/query" in p]
    assert statuses.count(401) == 2
    env.emulator.close()


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


def test_composite_resolves_references_and_reports_each_subrequest(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            result = await sf.composite(
                [
                    Subrequest("POST", "sobjects/Account", "acct", body={"Name": "Parent"}),
                    Subrequest(
                        "POST",
                        "sobjects/Contact",
                        "ct",
                        body={"LastName": "Kid", "AccountId": "@{acct.id}"},
                    ),
                    Subrequest("POST", "sobjects/Lead", "bad", body={"LastName": "x"}),
                ]
            )
            assert result["acct"].ok
            assert result["ct"].ok
            assert not result.ok
            with pytest.raises(InvalidRequest):
                result["bad"].raise_for_error()
            with pytest.raises(InvalidRequest, match="at most 25"):
                await sf.composite([Subrequest("GET", "limits", f"r{i}") for i in range(26)])

    sf_env.run(main)


def test_collections_chunk_by_200_and_return_one_result_per_record(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            rows = [{"LastName": f"L{i}", "External_Id__c": f"c{i}"} for i in range(450)]
            created = await sf.create_many(rows, sobject="Contact")
            assert len(created) == 450
            assert all(r.success for r in created)
            ids = [r.id for r in created if r.id]
            updated = await sf.update_many(
                [{"Id": i, "Title": "T"} for i in ids[:250]], sobject="Contact"
            )
            assert all(r.success for r in updated)
            upserted = await sf.upsert_many(
                "Contact",
                "External_Id__c",
                [
                    {"External_Id__c": "c1", "LastName": "Z"},
                    {"External_Id__c": "new", "LastName": "N"},
                ],
            )
            assert [r.created for r in upserted] == [False, True]
            mixed = await sf.create_many([{"LastName": "ok"}, {"FirstName": "no"}], sobject="Lead")
            assert [r.success for r in mixed] == [False, False] or [r.success for r in mixed] == [
                True,
                False,
            ]
            with pytest.raises(InvalidRequest):
                mixed[1].raise_for_error()
            deleted = await sf.delete_many(ids)
            assert len(deleted) == 450
            assert all(r.success for r in deleted)

    sf_env.run(main)
    posts = [p for m, p, s in sf_env.emulator.requests if m == "POST" and "composite/sobjects" in p]
    assert len(posts) == 4  # 200 + 200 + 50, then the mixed pair


def test_unsupported_api_version_fails_at_connect_listing_supported_ones(sf_env: SfEnv) -> None:
    async def main() -> None:
        with pytest.raises(IncompatibleVersion, match=r"31\.0") as info:
            async with sf_env.open(sf_env.jwt_settings(api_version="25.0")):
                pass
        assert "62.0" in str(info.value)

    sf_env.run(main)


def test_daily_quota_exhaustion_is_rate_limited_without_retry_and_unhealthy(
    sf_env: SfEnv,
) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            used = sf_env.emulator.api_usage
            sf_env.emulator.set_api_quota(used + 1, used)
            await sf.limits()  # the last call of the day
            before = len(sf_env.emulator.requests)
            with pytest.raises(RateLimited) as info:
                await sf.query("SELECT Id FROM Contact LIMIT 1")
            assert info.value.quota == "DailyApiRequests"
            assert info.value.retry_after is not None
            assert info.value.retry_after >= 3600
            assert len(sf_env.emulator.requests) - before == 1  # not retried
            with pytest.raises(RateLimited):  # refused locally, no call spent
                await sf.create("Lead", {"LastName": "x", "Company": "y"})
            assert len(sf_env.emulator.requests) - before == 1
            health = await sf.health_check()
            assert health.status is HealthStatus.UNHEALTHY
            quota = health.check("api_quota")
            assert quota is not None
            assert quota.status is HealthStatus.UNHEALTHY
            assert "exhausted" in quota.detail

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
            sf.http._client._transport = httpx2.MockTransport(refuse)
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
