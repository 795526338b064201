"""Every public operation of the Salesforce connector, in process and over loopback.

Each test is written once and runs twice (``env`` is parametrized, see :mod:`.modes`): through
``httpx2.ASGITransport`` on a fake clock, and through the real network stack against the
emulator served by uvicorn on ``127.0.0.1``. The scenarios of the Done-when list are here too:
injected 5xx and 429 faults (retried), a session that expires mid-iteration (one refresh, one
retry), daily quota exhaustion (no retry, health says so) and Bulk 2.0 jobs with failed rows.
"""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from connectors.adapters.salesforce import (
    BulkIngestResult,
    BulkJobInfo,
    SalesforceConnector,
    SaveResult,
    Subrequest,
)
from connectors.adapters.salesforce.csvstream import RowSource
from connectors.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ServiceUnavailable,
)
from connectors.observability.health import HealthStatus
from connectors.testing.salesforce import SeedSpec

from .conftest import KeyPair
from .modes import MODES, LoopbackServer, ModeEnv, mode_env

Rows = list[dict[str, object]]


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[LoopbackServer]:
    with LoopbackServer().running() as server:
        yield server


@pytest.fixture(params=MODES)
def env(request: pytest.FixtureRequest, key_pair: KeyPair, tmp_path: Path) -> Iterator[ModeEnv]:
    """A fresh org per test, reached in process or over loopback (one server per module)."""
    server = request.getfixturevalue("loopback_server") if request.param == "loopback" else None
    with mode_env(request.param, key_pair, tmp_path, server=server) as made:
        yield made


def _ids(records: Sequence[Mapping[str, object]]) -> list[str]:
    return [str(r["Id"]) for r in records]


# --- REST: query, query_all, query_iter, count ---------------------------------------------------


def test_query_binds_parameters_and_query_all_and_count_see_deleted_records(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            made = await sf.create("Contact", {"LastName": "O'Brien", "Email": "o'b@x.io"})
            assert made.id is not None
            found = await sf.query(
                "SELECT Id, Email FROM Contact WHERE Email = :email", email="o'b@x.io"
            )
            assert _ids(found) == [made.id]
            assert found[0]["Email"] == "o'b@x.io"
            assert len(await sf.query("SELECT Id FROM Contact")) == 26
            assert await sf.count("Contact") == 26
            assert await sf.count("Contact", "Email = :e", e="o'b@x.io") == 1
            await sf.delete("Contact", made.id)
            assert await sf.query("SELECT Id FROM Contact WHERE Id = :id", id=made.id) == []
            every = await sf.query_all(
                "SELECT Id, IsDeleted FROM Contact WHERE Id = :id", id=made.id
            )
            assert _ids(every) == [made.id]
            assert every[0]["IsDeleted"] is True
            assert await sf.count("Contact") == 25

    env.run(main)


def test_query_iter_streams_every_page_with_the_requested_batch_size(env: ModeEnv) -> None:
    env.emulator.seed(SeedSpec(contacts=450))

    async def main() -> list[str]:
        async with env.open() as sf:
            return [
                str(r["Id"]) async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)
            ]

    ids = env.run(main)
    assert len(ids) == len(set(ids)) == 450
    assert len(env.requests("GET", "/query")) == 3  # 200 + 200 + 50, via nextRecordsUrl


def test_session_expiry_mid_iteration_refreshes_once_and_retries_the_page(env: ModeEnv) -> None:
    env.emulator.seed(SeedSpec(contacts=600))
    ids: list[str] = []

    async def main() -> None:
        async with env.open() as sf:
            # Every session of the org ends just before it serves the second page of the query
            # (a point in the request sequence: the connector may read a page ahead).
            env.faults.set("expire_token_at=2,paths=/services/data/v*/query*")
            async for record in sf.query_iter("SELECT Id FROM Contact", batch_size=200):
                ids.append(str(record["Id"]))

    env.run(main)
    assert env.faults.counters["expire_tokens"] == 1
    assert len(ids) == len(set(ids)) == 600
    pages = [status for _, _, status in env.requests("GET", "/query")]
    assert pages == [200, 401, 200, 200]  # one refused page, retried once after the refresh
    assert len(env.requests("POST", "/services/oauth2/token", 200)) == 2  # connect + one refresh


# --- REST: sObjects ------------------------------------------------------------------------------


def test_create_get_update_delete_round_trip(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            made = await sf.create("Account", {"Name": "Acme"})
            assert isinstance(made, SaveResult)
            assert made.success
            assert made.id is not None
            assert made.id.startswith("001")
            await sf.update("Account", made.id, {"Name": "Acme 2", "Industry": "Energy"})
            got = await sf.get("Account", made.id, fields=["Id", "Name", "Industry"])
            assert (got["Id"], got["Name"], got["Industry"]) == (made.id, "Acme 2", "Energy")
            assert "Name" in await sf.get("Account", made.id)
            await sf.delete("Account", made.id)
            await sf.delete("Account", made.id)  # already deleted: done, not an error
            with pytest.raises(NotFound):
                await sf.get("Account", made.id)

    env.run(main)
    assert [s for _, _, s in env.requests("DELETE", "/sobjects/Account/")] == [204, 404]


def test_upsert_creates_updates_and_reports_multiple_matches_as_conflict(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            first = await sf.upsert("Contact", "External_Id__c", "ext-1 a", {"LastName": "A"})
            again = await sf.upsert("Contact", "External_Id__c", "ext-1 a", {"LastName": "B"})
            assert (first.created, again.created) == (True, False)
            assert first.id == again.id
            assert first.id is not None
            assert (await sf.get("Contact", first.id, ["LastName"]))["LastName"] == "B"
            one = env.emulator.insert("Contact", {"LastName": "C", "External_Id__c": "dup"})
            two = env.emulator.insert("Contact", {"LastName": "D", "External_Id__c": "dup"})
            with pytest.raises(Conflict) as info:
                await sf.upsert("Contact", "External_Id__c", "dup", {"LastName": "E"})
            assert sorted(info.value.candidates) == sorted([one, two])

    env.run(main)
    assert len(env.requests("PATCH", "/External_Id__c/dup", 300)) == 1  # 300 Multiple Choices


def test_describe_and_describe_global(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            described = await sf.describe("Contact")
            assert described["name"] == "Contact"
            fields = described["fields"]
            assert isinstance(fields, list)
            assert {"Id", "LastName", "External_Id__c"} <= {f["name"] for f in fields}
            sobjects = (await sf.describe_global())["sobjects"]
            assert isinstance(sobjects, list)
            assert {"Account", "Contact", "Lead"} <= {o["name"] for o in sobjects}

    env.run(main)


def test_typed_errors_for_bad_input(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open(env.settings(max_materialize=10)) as sf:
            with pytest.raises(InvalidRequest) as missing:
                await sf.create("Lead", {"FirstName": "No last name"})
            assert missing.value.provider_code == "REQUIRED_FIELD_MISSING"
            assert {f.field for f in missing.value.fields} >= {"LastName"}
            with pytest.raises(InvalidRequest) as bad_field:
                await sf.query("SELECT Nope__c FROM Contact LIMIT 1")
            assert bad_field.value.provider_code == "INVALID_FIELD"
            with pytest.raises(InvalidRequest) as too_many:
                await sf.query("SELECT Id FROM Contact")
            assert too_many.value.provider_code == "TOO_MANY_RECORDS"
            with pytest.raises(NotFound):
                await sf.get("Contact", "003000000000000AAA")

    env.run(main)


# --- limits and health ---------------------------------------------------------------------------


def test_limits_and_health_check_report_the_session_and_the_quota(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            limits = await sf.limits()
            assert limits["DailyApiRequests"]["Max"] == 100_000
            assert 0 < limits["DailyApiRequests"]["Remaining"] <= 100_000
            health = await sf.health_check()
            assert {c.name for c in health.checks} == {"auth", "api_quota"}
            assert health.status is HealthStatus.HEALTHY
            env.emulator.set_api_quota(1000, 950)
            health = await sf.health_check()
            quota = health.check("api_quota")
            assert quota is not None
            assert quota.status is HealthStatus.DEGRADED
            assert health.status is HealthStatus.DEGRADED

    env.run(main)


def test_daily_quota_exhaustion_is_rate_limited_without_retry_and_unhealthy(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            used = env.emulator.api_usage
            env.emulator.set_api_quota(used + 1, used)
            await sf.limits()  # the last call of the day
            before = len(env.emulator.requests)
            with pytest.raises(RateLimited) as info:
                await sf.query("SELECT Id FROM Contact LIMIT 1")
            assert info.value.quota == "DailyApiRequests"
            assert info.value.provider_code == "REQUEST_LIMIT_EXCEEDED"
            assert info.value.retry_after is not None
            assert info.value.retry_after >= 3600
            assert len(env.emulator.requests) - before == 1  # refused once, not retried
            with pytest.raises(RateLimited):  # refused locally: no call spent
                await sf.create("Lead", {"LastName": "x", "Company": "y"})
            assert len(env.emulator.requests) - before == 1
            health = await sf.health_check()
            assert health.status is HealthStatus.UNHEALTHY
            quota = health.check("api_quota")
            assert quota is not None
            assert quota.status is HealthStatus.UNHEALTHY
            assert "exhausted" in quota.detail
            auth = health.check("auth")
            assert auth is not None
            assert auth.status is HealthStatus.HEALTHY

    env.run(main)
    refused = [path for _, path, _ in env.requests(status=403)]
    assert refused[0].endswith("/query")  # then only the health probe, which is never gated


# --- Composite and sObject Collections -----------------------------------------------------------


def test_composite_resolves_references_and_reports_each_subrequest(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            result = await sf.composite(
                [
                    Subrequest("POST", "sobjects/Account", "acct", body={"Name": "Parent"}),
                    Subrequest(
                        "POST",
                        "sobjects/Contact",
                        "ct",
                        body={"LastName": "Kid", "AccountId": "@{acct.id}"},
                    ),
                    Subrequest("GET", "sobjects/Contact/@{ct.id}?fields=AccountId", "read"),
                    Subrequest("POST", "sobjects/Lead", "bad", body={"LastName": "x"}),
                ]
            )
            assert [r.reference_id for r in result] == ["acct", "ct", "read", "bad"]
            assert result["acct"].ok
            assert result["ct"].ok
            acct = result["acct"].body
            read = result["read"].body
            assert isinstance(acct, dict)
            assert isinstance(read, dict)
            assert read["AccountId"] == acct["id"]
            assert not result.ok
            with pytest.raises(InvalidRequest) as info:
                result["bad"].raise_for_error()
            assert info.value.provider_code == "REQUIRED_FIELD_MISSING"
            with pytest.raises(InvalidRequest, match="at most 25"):  # refused before sending
                await sf.composite([Subrequest("GET", "limits", f"r{i}") for i in range(26)])

    env.run(main)
    assert len(env.requests("POST", "/composite")) == 1


def test_collections_chunk_by_200_and_return_one_result_per_record(env: ModeEnv) -> None:
    def calls(method: str, suffix: str) -> int:
        return sum(1 for _, path, _ in env.requests(method) if path.endswith(suffix))

    async def main() -> None:
        async with env.open() as sf:
            rows = [{"LastName": f"L{i}", "External_Id__c": f"c{i}"} for i in range(450)]
            created = await sf.create_many(rows, sobject="Contact")
            assert len(created) == 450
            assert all(r.success and r.id for r in created)
            ids = [str(r.id) for r in created]
            assert calls("POST", "/composite/sobjects") == 3  # 200 + 200 + 50

            updated = await sf.update_many(
                [{"Id": i, "Title": "T"} for i in ids[:250]], sobject="Contact"
            )
            assert [r.id for r in updated] == ids[:250]
            assert all(r.success for r in updated)
            assert calls("PATCH", "/composite/sobjects") == 2  # 200 + 50
            assert await sf.count("Contact", "Title = 'T'") == 250

            upserts = [{"External_Id__c": f"c{i}", "LastName": "Z"} for i in range(200)]
            upserts.append({"External_Id__c": "new", "LastName": "N"})
            upserted = await sf.upsert_many("Contact", "External_Id__c", upserts)
            assert [r.created for r in upserted] == [False] * 200 + [True]
            assert calls("PATCH", "/composite/sobjects/Contact/External_Id__c") == 2  # 200 + 1

            mixed = await sf.create_many([{"LastName": "ok"}, {"FirstName": "no"}], sobject="Lead")
            assert [r.success for r in mixed][1] is False
            with pytest.raises(InvalidRequest):
                mixed[1].raise_for_error()

            deleted = await sf.delete_many([*ids, str(upserted[-1].id)])
            assert len(deleted) == 451
            assert all(r.success for r in deleted)
            assert calls("DELETE", "/composite/sobjects") == 3  # 200 + 200 + 51
            assert await sf.count("Contact") == 25

    env.run(main)


# --- Bulk API 2.0 --------------------------------------------------------------------------------


async def _aiter(rows: Rows) -> AsyncIterator[dict[str, object]]:
    for row in rows:
        yield row


def _write_csv(path: Path, rows: Rows) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


async def _results(
    sf: SalesforceConnector, result: BulkIngestResult
) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    ok = [row async for row in sf.bulk_successful_results(result)]
    failed = [row async for row in sf.bulk_failed_results(result)]
    unprocessed = [row async for row in sf.bulk_unprocessed_records(result)]
    return ok, failed, unprocessed


@pytest.mark.parametrize("source", ["iterable", "csv_file"])
def test_bulk_ingest_every_operation_with_successful_and_failed_rows(
    env: ModeEnv, source: str, tmp_path: Path
) -> None:
    """insert, update, upsert, delete and hardDelete; each job has one row that fails."""

    def rows_from(name: str, rows: Rows) -> RowSource:
        if source == "csv_file":
            return _write_csv(tmp_path / f"{name}.csv", rows)
        return _aiter(rows) if name == "insert" else iter(rows)

    async def main() -> None:
        async with env.open() as sf:
            # insert: four good rows, one without the required LastName
            rows: Rows = [{"LastName": f"B{i}", "Email": f"b{i}@x.io"} for i in range(4)]
            rows.insert(2, {"LastName": "", "Email": "nameless@x.io"})
            inserted = await sf.bulk_insert("Contact", rows_from("insert", rows))
            assert (inserted.records_processed, inserted.records_failed) == (5, 1)
            ok, failed, unprocessed = await _results(sf, inserted)
            assert [r["Email"] for r in ok] == [f"b{i}@x.io" for i in range(4)]
            assert {r["sf__Created"] for r in ok} == {"true"}
            assert [r["Email"] for r in failed] == ["nameless@x.io"]
            assert failed[0]["sf__Error"].startswith("REQUIRED_FIELD_MISSING")
            assert unprocessed == []
            ids = [r["sf__Id"] for r in ok]
            states = [i.state async for i in sf.bulk_job_states(inserted.job_ids[0])]
            assert states == ["JobComplete"]

            # update: every inserted id, and a malformed one
            rows = [{"Id": i, "Title": "Boss"} for i in ids] + [{"Id": "bogus", "Title": "x"}]
            updated = await sf.bulk_update("Contact", rows_from("update", rows))
            ok, failed, unprocessed = await _results(sf, updated)
            assert ([r["sf__Id"] for r in ok], unprocessed) == (ids, [])
            assert {r["sf__Created"] for r in ok} == {"false"}
            assert [r["Id"] for r in failed] == ["bogus"]
            assert failed[0]["sf__Error"].startswith("MALFORMED_ID")
            titles = await sf.query("SELECT Title FROM Contact WHERE Id IN :ids", ids=ids)
            assert [r["Title"] for r in titles] == ["Boss"] * 4

            # upsert: one new, one existing, one external id matching two records
            old = env.emulator.insert("Contact", {"LastName": "Old", "External_Id__c": "bx-old"})
            for name in ("D1", "D2"):
                env.emulator.insert("Contact", {"LastName": name, "External_Id__c": "bx-dup"})
            rows = [
                {"External_Id__c": "bx-new", "LastName": "New"},
                {"External_Id__c": "bx-old", "LastName": "Older"},
                {"External_Id__c": "bx-dup", "LastName": "Dup"},
            ]
            upserted = await sf.bulk_upsert("Contact", "External_Id__c", rows_from("upsert", rows))
            ok, failed, unprocessed = await _results(sf, upserted)
            created = {r["External_Id__c"]: r["sf__Created"] for r in ok}
            assert created == {"bx-new": "true", "bx-old": "false"}
            assert ok[1]["sf__Id"] == old
            assert [r["External_Id__c"] for r in failed] == ["bx-dup"]
            assert failed[0]["sf__Error"].startswith("DUPLICATE_EXTERNAL_ID")
            assert unprocessed == []

            # delete (to the recycle bin) and hardDelete (gone for good)
            soft, hard = ids[:2], ids[2:]
            for kind, chosen in (("delete", soft), ("hardDelete", hard)):
                rows = [{"Id": i} for i in chosen] + [{"Id": "bogus"}]
                if kind == "delete":
                    result = await sf.bulk_delete("Contact", rows_from(kind, rows))
                else:
                    result = await sf.bulk_hard_delete("Contact", rows_from(kind, rows))
                ok, failed, unprocessed = await _results(sf, result)
                assert [r["sf__Id"] for r in ok] == chosen
                assert [r["Id"] for r in failed] == ["bogus"]
                assert unprocessed == []
            assert await sf.count("Contact", "Id IN :ids", ids=ids) == 0
            binned = await sf.query_all("SELECT Id FROM Contact WHERE Id IN :ids", ids=ids)
            assert sorted(_ids(binned)) == sorted(soft)

    env.run(main)
    assert len(env.requests("PUT", "/batches", 201)) == 5


def test_bulk_job_with_failed_rows_in_several_chunks_streams_every_failure_back(
    env: ModeEnv,
) -> None:
    seen: list[BulkJobInfo] = []
    rows: Rows = [
        {"LastName": "" if i % 3 == 0 else f"Row{i:04}", "Company": f"Co{i:04}"} for i in range(600)
    ]

    async def main() -> None:
        async with env.open(env.settings(bulk_chunk_bytes=4096)) as sf:
            result = await sf.bulk_insert("Lead", rows, on_progress=seen.append)
            assert len(result.jobs) > 1  # 4 KB chunks: one job per chunk
            assert result.records_processed == 600
            assert result.records_failed == 200
            ok, failed, unprocessed = await _results(sf, result)
            assert [r["Company"] for r in ok] == [f"Co{i:04}" for i in range(600) if i % 3 != 0]
            assert [r["Company"] for r in failed] == [f"Co{i:04}" for i in range(0, 600, 3)]
            assert all(r["sf__Error"].startswith("REQUIRED_FIELD_MISSING") for r in failed)
            assert all(r["sf__Id"] == "" for r in failed)
            assert unprocessed == []
            assert await sf.count("Lead") == 400

    env.run(main)
    finished = [info for info in seen if info.done]
    assert len(finished) == len({info.id for info in seen}) > 1
    assert {info.state for info in finished} == {"JobComplete"}
    assert {"InProgress", "JobComplete"} <= {info.state for info in seen}


def test_a_failed_bulk_job_raises_and_its_rows_come_back_unprocessed(env: ModeEnv) -> None:
    seen: list[BulkJobInfo] = []
    rows = [{"LastName": f"N{i}", "NoSuchField__c": str(i)} for i in range(3)]

    async def main() -> None:
        async with env.open() as sf:
            with pytest.raises(PermanentError, match="ended Failed") as info:
                await sf.bulk_insert("Lead", rows, on_progress=seen.append)
            assert info.value.provider_code == "BULK_JOB_FAILED"
            job_id = seen[-1].id
            assert seen[-1].state == "Failed"
            assert "NoSuchField__c" in (seen[-1].error_message or "")
            unprocessed = [row async for row in sf.bulk_unprocessed_records(job_id)]
            assert unprocessed == [
                {"LastName": f"N{i}", "NoSuchField__c": str(i)} for i in range(3)
            ]
            with pytest.raises(InvalidRequest) as not_done:  # a Failed job has no results
                [row async for row in sf.bulk_successful_results(job_id)]
            assert not_done.value.provider_code == "JOB_NOT_COMPLETE"

    env.run(main)


def test_bulk_query_streams_csv_pages_using_the_locator(env: ModeEnv) -> None:
    progress: list[BulkJobInfo] = []

    async def main() -> None:
        async with env.open() as sf:
            rows = [
                row
                async for row in sf.bulk_query(
                    "SELECT Id, LastName FROM Contact WHERE LastName != :x",
                    x="",
                    page_size=10,
                    on_progress=progress.append,
                )
            ]
            assert len(rows) == len({r["Id"] for r in rows}) == 25
            assert set(rows[0]) == {"Id", "LastName"}
            gone = rows[0]["Id"]
            await sf.delete("Contact", gone)
            soql = "SELECT Id FROM Contact WHERE Id = :id"
            assert [r async for r in sf.bulk_query(soql, id=gone)] == []
            every = [r async for r in sf.bulk_query(soql, id=gone, include_deleted=True)]
            assert every == [{"Id": gone}]

    env.run(main)
    job = progress[-1]
    assert (job.kind, job.state, job.records_processed) == ("query", "JobComplete", 25)
    assert len(env.requests("GET", f"/jobs/query/{job.id}/results")) == 3  # 10 + 10 + 5


# --- injected faults -----------------------------------------------------------------------------

FAULTS = (
    "5xx=0.2:body=json:paths=/services/data/v*,"
    "429=0.1:retry_after=0.02:paths=/services/data/v*,"
    "seed=11"
)


def _retries(env: ModeEnv) -> dict[str, float]:
    out: dict[str, float] = {}
    for (name, labels), value in env.hub.metrics.samples().items():
        if name == "connector_retries_total":
            reason = dict(labels)["reason"]
            out[reason] = out.get(reason, 0.0) + value
    return out


def test_injected_5xx_and_429_are_retried_until_every_idempotent_operation_succeeds(
    env: ModeEnv,
) -> None:
    env.emulator.seed(SeedSpec(contacts=450, accounts=5))

    async def main() -> None:
        async with env.open() as sf:
            contact = await sf.create("Contact", {"LastName": "Faulty", "External_Id__c": "f-1"})
            assert contact.id is not None
            env.faults.set(FAULTS)
            assert len(await sf.query("SELECT Id FROM Contact LIMIT 5")) == 5
            streamed = [r async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)]
            assert len(streamed) == 451
            assert len(await sf.query_all("SELECT Id FROM Account")) == 5
            assert await sf.count("Contact") == 451
            await sf.update("Contact", contact.id, {"Title": "Retried"})
            assert (await sf.get("Contact", contact.id, ["Title"]))["Title"] == "Retried"
            up = await sf.upsert("Contact", "External_Id__c", "f-1", {"LastName": "Again"})
            assert (up.id, up.created) == (contact.id, False)
            assert (await sf.describe("Contact"))["name"] == "Contact"
            assert "sobjects" in await sf.describe_global()
            assert "DailyApiRequests" in await sf.limits()
            many = await sf.update_many([{"Id": contact.id, "Title": "Many"}], sobject="Contact")
            assert [r.success for r in many] == [True]
            rows = [{"External_Id__c": f"fb-{i}", "LastName": f"FB{i}"} for i in range(20)]
            bulk = await sf.bulk_upsert("Contact", "External_Id__c", rows)
            assert (bulk.records_processed, bulk.records_failed) == (20, 0)
            assert len([r async for r in sf.bulk_successful_results(bulk)]) == 20
            queried = [r async for r in sf.bulk_query("SELECT Id FROM Account", page_size=2)]
            assert len(queried) == 5
            health = await sf.health_check()
            assert health.status is HealthStatus.HEALTHY  # transient 429s are not the daily quota
            await sf.delete("Contact", contact.id)
            with pytest.raises(NotFound):
                await sf.get("Contact", contact.id)

    env.run(main)
    injected = env.faults.counters
    assert injected["5xx"] > 0
    assert injected["429"] > 0
    retries = _retries(env)
    # Every injected fault was retried exactly once, and nothing else was.
    assert retries == {"service_unavailable": injected["5xx"], "rate_limited": injected["429"]}


def test_an_injected_429_is_retried_after_the_retry_after_it_carries(env: ModeEnv) -> None:
    async def main() -> None:
        async with env.open() as sf:
            # With this seed the plan answers 429 to the first request and lets the next ones by.
            env.faults.set("429=0.5:retry_after=0.02:paths=/services/data/v*,seed=39")
            env.clock.sleeps.clear()
            assert "DailyApiRequests" in await sf.limits()

    env.run(main)
    assert env.faults.counters["429"] == 1
    assert _retries(env) == {"rate_limited": 1}
    assert env.waits() == [0.02]  # the header's wait, not a fixed default


def test_injected_faults_never_duplicate_a_create_and_surface_typed_errors(env: ModeEnv) -> None:
    outcomes: list[str] = []

    async def main() -> None:
        async with env.open() as sf:
            env.faults.set(FAULTS)
            for i in range(30):
                try:
                    made = await sf.create(
                        "Lead", {"LastName": f"F{i}", "Company": "C", "External_Id__c": f"f{i}"}
                    )
                    outcomes.append("ok" if made.success else "failed")
                except (ServiceUnavailable, RateLimited) as exc:
                    outcomes.append(type(exc).__name__)
            env.faults.clear()
            leads = await sf.query("SELECT External_Id__c FROM Lead")
            keys = [str(r["External_Id__c"]) for r in leads]
            assert len(keys) == len(set(keys)) == outcomes.count("ok")

    env.run(main)
    injected = env.faults.counters
    assert injected["5xx"] > 0
    assert injected["429"] > 0
    # A create answered 5xx may have reached Salesforce: it is reported, never re-sent.
    assert outcomes.count("ServiceUnavailable") == injected["5xx"]
    assert "service_unavailable" not in _retries(env)
    assert 0 < outcomes.count("RateLimited") <= injected["429"]
