"""Bulk API 2.0 query jobs: states, JOB_NOT_COMPLETE, CSV pages with Sforce-Locator."""

from __future__ import annotations

import csv
import io

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec

from ._support import V, bearer, client, make_emulator, run


def test_query_job_pages_results_with_locators_until_null():
    emulator, _ = make_emulator(
        SalesforceEmulatorConfig(
            seed=SeedSpec(accounts=5, contacts=25), bulk_polls_until_complete=2
        )
    )

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            job = (
                await http.post(
                    f"{V}/jobs/query",
                    json={
                        "operation": "query",
                        "query": "SELECT Id, LastName, Account.Name FROM Contact",
                    },
                    headers=headers,
                )
            ).json()
            early = await http.get(f"{V}/jobs/query/{job['id']}/results", headers=headers)
            states = [
                (await http.get(f"{V}/jobs/query/{job['id']}", headers=headers)).json()
                for _ in range(2)
            ]
            pages = []
            locator = ""
            while True:
                params = {"maxRecords": "10", **({"locator": locator} if locator else {})}
                page = await http.get(
                    f"{V}/jobs/query/{job['id']}/results", params=params, headers=headers
                )
                pages.append(page)
                locator = page.headers["sforce-locator"]
                if locator == "null":
                    break
            wrong_version = await http.get(
                f"/services/data/v61.0/jobs/query/{job['id']}/results", headers=headers
            )
            return job, early, states, pages, wrong_version

    job, early, states, pages, wrong_version = run(main)
    assert job["state"] == "UploadComplete"
    assert early.status_code == 412
    assert early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    assert early.json()[0]["message"].endswith("Current status: UPLOAD_COMPLETE")
    assert [s["state"] for s in states] == ["InProgress", "JobComplete"]
    assert states[-1]["numberRecordsProcessed"] == 25
    assert [p.headers["sforce-numberofrecords"] for p in pages] == ["10", "10", "5"]
    rows = [row for p in pages for row in list(csv.reader(io.StringIO(p.text)))[1:]]
    header = next(csv.reader(io.StringIO(pages[0].text)))
    assert header == ["Id", "LastName", "Account.Name"]
    assert pages[0].text.startswith('"Id","LastName","Account.Name"')
    assert len({r[0] for r in rows}) == 25
    assert wrong_version.status_code == 409
    emulator.close()


def test_query_all_job_includes_deleted_and_a_locator_can_be_reread():
    emulator, _ = make_emulator(
        SalesforceEmulatorConfig(seed=SeedSpec(leads=6), bulk_polls_until_complete=1)
    )

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            ids = [
                r["Id"]
                for r in (
                    await http.get(
                        f"{V}/query", params={"q": "SELECT Id FROM Lead"}, headers=headers
                    )
                ).json()["records"]
            ]
            await http.delete(f"{V}/sobjects/Lead/{ids[0]}", headers=headers)
            job = (
                await http.post(
                    f"{V}/jobs/query",
                    json={
                        "operation": "queryAll",
                        "query": "SELECT Id FROM Lead",
                        "columnDelimiter": "SEMICOLON",
                        "lineEnding": "CRLF",
                    },
                    headers=headers,
                )
            ).json()
            await http.get(f"{V}/jobs/query/{job['id']}", headers=headers)
            first = await http.get(
                f"{V}/jobs/query/{job['id']}/results", params={"maxRecords": "4"}, headers=headers
            )
            locator = first.headers["sforce-locator"]
            second = await http.get(
                f"{V}/jobs/query/{job['id']}/results", params={"locator": locator}, headers=headers
            )
            again = await http.get(
                f"{V}/jobs/query/{job['id']}/results", params={"locator": locator}, headers=headers
            )
            bad = await http.get(
                f"{V}/jobs/query/{job['id']}/results", params={"locator": "nope"}, headers=headers
            )
            return first, second, again, bad

    first, second, again, bad = run(main)
    assert first.text.split("\r\n")[0] == '"Id"'
    assert first.headers["sforce-numberofrecords"] == "4"
    assert second.headers["sforce-locator"] == "null"
    assert second.headers["sforce-numberofrecords"] == "2"
    assert again.text == second.text
    assert bad.status_code == 400
    emulator.close()


def test_query_job_rejects_bad_soql_and_aggregates_and_can_be_aborted():
    emulator, _ = make_emulator()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            bad = await http.post(
                f"{V}/jobs/query", json={"query": "SELECT Nope FROM Account"}, headers=headers
            )
            agg = await http.post(
                f"{V}/jobs/query", json={"query": "SELECT COUNT() FROM Account"}, headers=headers
            )
            job = (
                await http.post(
                    f"{V}/jobs/query", json={"query": "SELECT Id FROM Account"}, headers=headers
                )
            ).json()
            aborted = (
                await http.patch(
                    f"{V}/jobs/query/{job['id']}", json={"state": "Aborted"}, headers=headers
                )
            ).json()
            return bad, agg, aborted

    bad, agg, aborted = run(main)
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_FIELD"
    assert agg.status_code == 400
    assert aborted["state"] == "Aborted"
    emulator.close()
