"""Bulk API 2.0 ingest: job lifecycle, CSV upload (several times), failed rows, results CSVs."""

from __future__ import annotations

import csv
import io

from connectors.testing.salesforce import SalesforceEmulatorConfig

from ._support import V, bearer, client, make_emulator, run


def _rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_insert_job_lifecycle_with_failed_rows_and_results():
    emulator, _ = make_emulator(
        SalesforceEmulatorConfig(bulk_polls_until_in_progress=1, bulk_polls_until_complete=3)
    )

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            job = (
                await http.post(
                    f"{V}/jobs/ingest",
                    json={"object": "Contact", "operation": "insert", "lineEnding": "LF"},
                    headers=headers,
                )
            ).json()
            upload = f"{V}/jobs/ingest/{job['id']}/batches"
            csv_headers = {**headers, "Content-Type": "text/csv"}
            first = await http.put(
                upload,
                content=b"FirstName,LastName,Email\nAda,Lovelace,ada@example.com\nNo,,x@example.com\n",
                headers=csv_headers,
            )
            second = await http.put(
                upload,
                content=b"FirstName,LastName,Email\nAlan,Turing,not-an-email\nGrace,Hopper,\n",
                headers=csv_headers,
            )
            early = await http.get(
                f"{V}/jobs/ingest/{job['id']}/successfulResults", headers=headers
            )
            closed = (
                await http.patch(
                    f"{V}/jobs/ingest/{job['id']}",
                    json={"state": "UploadComplete"},
                    headers=headers,
                )
            ).json()
            late_upload = await http.put(upload, content=b"LastName\nX\n", headers=csv_headers)
            states = []
            for _ in range(3):
                states.append(
                    (await http.get(f"{V}/jobs/ingest/{job['id']}", headers=headers)).json()
                )
            ok = await http.get(f"{V}/jobs/ingest/{job['id']}/successfulResults", headers=headers)
            bad = await http.get(f"{V}/jobs/ingest/{job['id']}/failedResults", headers=headers)
            unprocessed = await http.get(
                f"{V}/jobs/ingest/{job['id']}/unprocessedrecords", headers=headers
            )
            return job, first, second, early, closed, late_upload, states, ok, bad, unprocessed

    job, first, second, early, closed, late_upload, states, ok, bad, unprocessed = run(main)
    assert job["state"] == "Open"
    assert job["id"].startswith("750")
    assert job["contentUrl"] == f"services/data/v62.0/jobs/ingest/{job['id']}/batches"
    assert (first.status_code, second.status_code) == (201, 201)
    assert early.status_code == 412
    assert closed["state"] == "UploadComplete"
    assert late_upload.status_code == 409
    assert [s["state"] for s in states] == ["InProgress", "InProgress", "JobComplete"]
    final = states[-1]
    assert final["numberRecordsProcessed"] == 4
    assert final["numberRecordsFailed"] == 2
    assert final["jobType"] == "V2Ingest"
    ok_rows = _rows(ok.text)
    assert ok_rows[0] == ["sf__Id", "sf__Created", "FirstName", "LastName", "Email"]
    assert [r[2] for r in ok_rows[1:]] == ["Ada", "Grace"]
    assert all(r[0].startswith("003") and r[1] == "true" for r in ok_rows[1:])
    assert ok.headers["content-type"].startswith("text/csv")
    bad_rows = _rows(bad.text)
    assert bad_rows[0] == ["sf__Id", "sf__Error", "FirstName", "LastName", "Email"]
    assert bad_rows[1][1].startswith(
        "REQUIRED_FIELD_MISSING:Required fields are missing: [LastName]"
    )
    assert bad_rows[2][1].startswith("INVALID_EMAIL_ADDRESS:")
    assert _rows(unprocessed.text) == [["FirstName", "LastName", "Email"]]
    created = emulator.record(ok_rows[1][0])
    assert created is not None
    assert created["Email"] == "ada@example.com"
    emulator.close()


def test_update_upsert_and_delete_jobs_apply_rows():
    emulator, _ = make_emulator(SalesforceEmulatorConfig(bulk_polls_until_complete=1))
    a = emulator.insert("Account", {"Name": "A"})
    b = emulator.insert("Account", {"Name": "B"})

    async def job(http, headers, spec, body):
        created = (await http.post(f"{V}/jobs/ingest", json=spec, headers=headers)).json()
        await http.put(
            f"{V}/jobs/ingest/{created['id']}/batches",
            content=body,
            headers={**headers, "Content-Type": "text/csv"},
        )
        await http.patch(
            f"{V}/jobs/ingest/{created['id']}", json={"state": "UploadComplete"}, headers=headers
        )
        info = (await http.get(f"{V}/jobs/ingest/{created['id']}", headers=headers)).json()
        ok = (
            await http.get(f"{V}/jobs/ingest/{created['id']}/successfulResults", headers=headers)
        ).text
        return info, _rows(ok)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            update = await job(
                http,
                headers,
                {"object": "Account", "operation": "update"},
                f"Id,Name,NumberOfEmployees\n{a},A2,5\n0015g1000000zzzAAA,X,1\n".encode(),
            )
            upsert = await job(
                http,
                headers,
                {
                    "object": "Account",
                    "operation": "upsert",
                    "externalIdFieldName": "Account_Number__c",
                    "columnDelimiter": "PIPE",
                },
                b"Account_Number__c|Name\nACC-1|First\nACC-1|Again\n",
            )
            delete = await job(
                http, headers, {"object": "Account", "operation": "delete"}, f"Id\n{b}\n".encode()
            )
            return update, upsert, delete

    update, upsert, delete = run(main)
    assert update[0]["numberRecordsFailed"] == 1
    assert emulator.record(a)["Name"] == "A2"
    assert emulator.record(a)["NumberOfEmployees"] == 5
    assert [r[1] for r in upsert[1][1:]] == ["true", "false"]
    assert upsert[1][0][:2] == ["sf__Id", "sf__Created"]
    assert emulator.record(b)["IsDeleted"] is True
    assert delete[0]["numberRecordsProcessed"] == 1
    emulator.close()


def test_unknown_column_fails_the_job_and_abort_keeps_rows_unprocessed():
    emulator, _ = make_emulator(SalesforceEmulatorConfig(bulk_polls_until_complete=1))

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            csv_headers = {**headers, "Content-Type": "text/csv"}
            failing = (
                await http.post(
                    f"{V}/jobs/ingest",
                    json={"object": "Lead", "operation": "insert"},
                    headers=headers,
                )
            ).json()
            await http.put(
                f"{V}/jobs/ingest/{failing['id']}/batches",
                content=b"LastName,Nope\nx,y\n",
                headers=csv_headers,
            )
            await http.patch(
                f"{V}/jobs/ingest/{failing['id']}",
                json={"state": "UploadComplete"},
                headers=headers,
            )
            failed = (await http.get(f"{V}/jobs/ingest/{failing['id']}", headers=headers)).json()
            aborting = (
                await http.post(
                    f"{V}/jobs/ingest",
                    json={"object": "Lead", "operation": "insert"},
                    headers=headers,
                )
            ).json()
            await http.put(
                f"{V}/jobs/ingest/{aborting['id']}/batches",
                content=b"LastName,Company\nx,y\n",
                headers=csv_headers,
            )
            aborted = (
                await http.patch(
                    f"{V}/jobs/ingest/{aborting['id']}", json={"state": "Aborted"}, headers=headers
                )
            ).json()
            unprocessed = (
                await http.get(
                    f"{V}/jobs/ingest/{aborting['id']}/unprocessedrecords", headers=headers
                )
            ).text
            bad_object = await http.post(
                f"{V}/jobs/ingest",
                json={"object": "Widget", "operation": "insert"},
                headers=headers,
            )
            bad_upsert = await http.post(
                f"{V}/jobs/ingest",
                json={"object": "Lead", "operation": "upsert", "externalIdFieldName": "LastName"},
                headers=headers,
            )
            deleted = await http.delete(f"{V}/jobs/ingest/{aborting['id']}", headers=headers)
            listing = (await http.get(f"{V}/jobs/ingest", headers=headers)).json()
            return failed, aborted, unprocessed, bad_object, bad_upsert, deleted, listing

    failed, aborted, unprocessed, bad_object, bad_upsert, deleted, listing = run(main)
    assert failed["state"] == "Failed"
    assert failed["errorMessage"] == "InvalidBatch : Field name not found : Nope"
    assert aborted["state"] == "Aborted"
    assert _rows(unprocessed) == [["LastName", "Company"], ["x", "y"]]
    assert bad_object.status_code == 400
    assert bad_upsert.status_code == 400
    assert deleted.status_code == 204
    assert len(listing["records"]) == 1
    emulator.close()


def test_jobs_complete_with_the_clock_when_configured():
    emulator, clock = make_emulator(
        SalesforceEmulatorConfig(bulk_polls_until_complete=1000, bulk_processing_seconds=30)
    )

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            job = (
                await http.post(
                    f"{V}/jobs/ingest",
                    json={"object": "Account", "operation": "insert"},
                    headers=headers,
                )
            ).json()
            await http.put(
                f"{V}/jobs/ingest/{job['id']}/batches",
                content=b"Name\nA\n",
                headers={**headers, "Content-Type": "text/csv"},
            )
            await http.patch(
                f"{V}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, headers=headers
            )
            before = (await http.get(f"{V}/jobs/ingest/{job['id']}", headers=headers)).json()[
                "state"
            ]
            clock.advance(31)
            after = (await http.get(f"{V}/jobs/ingest/{job['id']}", headers=headers)).json()[
                "state"
            ]
            return before, after

    assert run(main) == ("InProgress", "JobComplete")
    emulator.close()


def test_upload_is_streamed_to_disk_not_memory():
    emulator, _ = make_emulator(
        SalesforceEmulatorConfig(bulk_polls_until_complete=1, bulk_apply_to_store=False)
    )
    rows = 20_000

    async def chunks():
        yield b"LastName,Company\n"
        for start in range(0, rows, 1000):
            yield "".join(f"L{i},C{i}\n" for i in range(start, start + 1000)).encode()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            job = (
                await http.post(
                    f"{V}/jobs/ingest",
                    json={"object": "Lead", "operation": "insert"},
                    headers=headers,
                )
            ).json()
            put = await http.put(
                f"{V}/jobs/ingest/{job['id']}/batches",
                content=chunks(),
                headers={**headers, "Content-Type": "text/csv"},
            )
            await http.patch(
                f"{V}/jobs/ingest/{job['id']}", json={"state": "UploadComplete"}, headers=headers
            )
            info = (await http.get(f"{V}/jobs/ingest/{job['id']}", headers=headers)).json()
            return put, info, job["id"]

    put, info, job_id = run(main)
    assert put.status_code == 201
    assert info["numberRecordsProcessed"] == rows
    assert info["numberRecordsFailed"] == 0
    stored = emulator.ingest.jobs[job_id]
    assert stored.uploads[0].stat().st_size > 100_000
    assert emulator.org.store.overlay_size == 1  # dry-run mode kept nothing in the store
    emulator.close()
