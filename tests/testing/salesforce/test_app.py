"""The HTTP layer: versions, sessions, limits, latency."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec
from connectors.testing.salesforce.app import version_label
from connectors.testing.salesforce.validation import RecordError

from ._support import V, bearer, client, make_emulator, run


def test_versions_are_listed_from_the_oldest_supported_to_the_latest():
    emulator, _ = make_emulator(
        SalesforceEmulatorConfig(latest_version="62.0", oldest_supported_version="31.0")
    )

    async def main():
        async with client(emulator) as http:
            return await http.get("/services/data")

    response = run(main)
    versions = response.json()
    assert versions[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert versions[-1]["version"] == "62.0"
    assert "sforce-limit-info" not in response.headers
    assert version_label(59) == "Winter '24"
    assert version_label(67) == "Summer '26"
    emulator.close()


def test_retired_version_answers_410_and_unknown_versions_404():
    emulator, _ = make_emulator()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            retired = await http.get("/services/data/v30.0/sobjects", headers=headers)
            future = await http.get("/services/data/v99.0/sobjects", headers=headers)
            garbage = await http.get("/services/data/latest/sobjects", headers=headers)
            return retired, future, garbage

    retired, future, garbage = run(main)
    assert retired.status_code == 410
    assert retired.json()[0]["errorCode"] == "GONE"
    assert future.status_code == 404
    assert future.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert garbage.status_code == 404
    emulator.close()


def test_sessions_expire_after_the_session_timeout_on_the_clock():
    emulator, clock = make_emulator(SalesforceEmulatorConfig(session_timeout=7200))

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            before = await http.get(f"{V}/limits", headers=headers)
            clock.advance(7199)
            still = await http.get(f"{V}/limits", headers=headers)
            clock.advance(2)
            after = await http.get(f"{V}/limits", headers=headers)
            missing = await http.get(f"{V}/limits")
            return before, still, after, missing

    before, still, after, missing = run(main)
    assert (before.status_code, still.status_code, after.status_code) == (200, 200, 401)
    assert after.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    assert missing.status_code == 401
    emulator.close()


def test_expire_all_sessions_invalidates_live_tokens():
    emulator, _ = make_emulator()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            assert emulator.expire_all_sessions() == 1
            return await http.get(f"{V}/limits", headers=headers)

    assert run(main).json()[0]["errorCode"] == "INVALID_SESSION_ID"
    emulator.close()


def test_every_rest_response_carries_api_usage_and_the_quota_is_enforced():
    emulator, _ = make_emulator()
    emulator.set_api_quota(3, used=1)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            first = await http.get(f"{V}/limits", headers=headers)
            second = await http.get(f"{V}/sobjects", headers=headers)
            third = await http.get(f"{V}/limits", headers=headers)
            return first, second, third

    first, second, third = run(main)
    assert first.headers["sforce-limit-info"] == "api-usage=2/3"
    assert first.json()["DailyApiRequests"] == {"Max": 3, "Remaining": 1}
    assert second.headers["sforce-limit-info"] == "api-usage=3/3"
    assert third.status_code == 403
    assert third.json() == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert emulator.api_usage == 3
    emulator.close()


def test_concurrent_long_running_requests_over_the_limit_are_refused():
    emulator, clock = make_emulator(
        SalesforceEmulatorConfig(long_request_threshold=20, max_concurrent_long_requests=2)
    )
    emulator.set_latency(30, path_contains="/sobjects")

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)

            async def late_call() -> httpx2.Response:
                await clock.sleep(25)  # both slow calls have now run for 25 s
                return await http.get(f"{V}/limits", headers=headers)

            slow = [http.get(f"{V}/sobjects", headers=headers) for _ in range(2)]
            results = await asyncio.gather(*slow, late_call())
            after = await http.get(f"{V}/limits", headers=headers)
            return results, after

    (slow_a, slow_b, late), after = run(main)
    assert slow_a.status_code == slow_b.status_code == 200
    assert late.status_code == 403
    assert late.json() == [
        {
            "message": "ConcurrentPerOrgLongTxn Limit exceeded.",
            "errorCode": "REQUEST_LIMIT_EXCEEDED",
        }
    ]
    assert after.status_code == 200
    emulator.close()


def test_short_requests_are_not_limited_by_concurrency():
    emulator, clock = make_emulator(SalesforceEmulatorConfig(max_concurrent_long_requests=1))
    emulator.set_latency(5)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            return await asyncio.gather(
                *(http.get(f"{V}/limits", headers=headers) for _ in range(5))
            )

    assert {r.status_code for r in run(main)} == {200}
    assert 5 in clock.sleeps
    emulator.close()


def test_latency_is_waited_on_the_injected_clock():
    emulator, clock = make_emulator(SalesforceEmulatorConfig(latency=0.05))

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            await http.get(f"{V}/limits", headers=headers)

    run(main)
    assert clock.sleeps == [0.05]
    emulator.close()


def test_wrong_method_and_unknown_resource_use_salesforce_error_bodies():
    emulator, _ = make_emulator()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            wrong = await http.put(f"{V}/limits", headers=headers)
            unknown = await http.get(f"{V}/nothing/here", headers=headers)
            bad_json = await http.post(f"{V}/sobjects/Account", content=b"{nope", headers=headers)
            return wrong, unknown, bad_json

    wrong, unknown, bad_json = run(main)
    assert wrong.status_code == 405
    assert wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    assert unknown.status_code == 404
    assert bad_json.status_code == 400
    assert bad_json.json()[0]["errorCode"] == "JSON_PARSER_ERROR"
    emulator.close()


def test_version_root_lists_resources():
    emulator, _ = make_emulator()

    async def main():
        async with client(emulator) as http:
            return await http.get(V + "/", headers=await bearer(http))

    body = run(main).json()
    assert body["query"] == f"{V}/query"
    assert body["sobjects"] == f"{V}/sobjects"
    emulator.close()


def test_seed_control_replaces_the_seeded_data_and_insert_validates():
    emulator, _ = make_emulator()
    emulator.seed(SeedSpec(opportunities=7))
    opportunity = emulator.schema.get("Opportunity")
    assert opportunity is not None
    assert emulator.org.store.count(opportunity, include_deleted=False) == 7
    admin = emulator.record(emulator.admin_user_id)
    assert admin is not None
    assert admin["CreatedById"] == emulator.admin_user_id
    with pytest.raises(RecordError):
        emulator.insert("Opportunity", {"Name": "missing stage and date"})
    with pytest.raises(KeyError):
        emulator.insert("Widget", {})
    emulator.close()


def test_long_request_limit_can_be_changed_at_run_time():
    emulator, clock = make_emulator()
    emulator.set_long_request_limit(1, threshold=1)
    emulator.set_latency(2, path_contains="/sobjects")

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)

            async def late_call() -> httpx2.Response:
                await clock.sleep(1.5)
                return await http.get(f"{V}/limits", headers=headers)

            return await asyncio.gather(http.get(f"{V}/sobjects", headers=headers), late_call())

    slow, late = run(main)
    assert slow.status_code == 200
    assert late.status_code == 403
    emulator.close()
