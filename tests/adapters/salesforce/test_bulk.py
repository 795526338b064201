"""Bulk API 2.0 through the connector: streamed ingest, failed rows, results, query jobs."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from connectors.adapters.salesforce import BulkJobInfo
from connectors.errors import InvalidRequest, PermanentError

from .conftest import SfEnv


async def _rows(count: int) -> AsyncIterator[dict[str, object]]:
    for i in range(count):
        yield {"LastName": f"Bulk{i}", "Company": "Acme", "Email": None}


def test_bulk_insert_from_an_async_iterable_streams_chunks_and_reports_progress(
    sf_env: SfEnv,
) -> None:
    seen: list[BulkJobInfo] = []

    async def main() -> None:
        async with sf_env.open(sf_env.jwt_settings(bulk_chunk_bytes=4096)) as sf:
            result = await sf.bulk_insert("Lead", _rows(500), on_progress=seen.append)
            assert len(result.jobs) > 1  # 4 KB chunks: several jobs
            assert result.records_processed == 500
            assert result.records_failed == 0
            ok = [row async for row in sf.bulk_successful_results(result)]
            assert len(ok) == 500
            assert all(r["sf__Created"] == "true" for r in ok)
            assert await sf.count("Lead") == 500

    sf_env.run(main)
    states = [info.state for info in seen]
    assert "JobComplete" in states
    assert "InProgress" in states or "UploadComplete" in states
    uploads = [p for m, p, s in sf_env.emulator.requests if m == "PUT"]
    assert len(uploads) > 1


def test_failed_rows_are_streamed_back_with_sf_error(sf_env: SfEnv) -> None:
    rows = [{"LastName": "Good", "Company": "A"}, {"LastName": "", "Company": "B"}]

    async def main() -> None:
        async with sf_env.open() as sf:
            result = await sf.bulk_insert("Lead", rows)
            assert result.records_failed == 1
            failed = [row async for row in sf.bulk_failed_results(result.job_ids[0])]
            assert len(failed) == 1
            assert "REQUIRED_FIELD_MISSING" in failed[0]["sf__Error"]
            assert failed[0]["Company"] == "B"
            unprocessed = [row async for row in sf.bulk_unprocessed_records(result)]
            assert unprocessed == []

    sf_env.run(main)


def test_bulk_update_upsert_delete_and_hard_delete_from_a_csv_file(
    sf_env: SfEnv, tmp_path: Path
) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            made = await sf.bulk_upsert(
                "Contact",
                "External_Id__c",
                [{"External_Id__c": f"x{i}", "LastName": f"U{i}"} for i in range(10)],
            )
            ids = [r["sf__Id"] async for r in sf.bulk_successful_results(made)]
            path = tmp_path / "update.csv"
            with path.open("w", newline="") as handle:
                writer = csv.writer(handle)
                writer.writerow(["Id", "Title"])
                writer.writerows([i, "Boss"] for i in ids)
            await sf.bulk_update("Contact", path)
            titles = await sf.query("SELECT Title FROM Contact WHERE Id IN :ids", ids=ids)
            assert {r["Title"] for r in titles} == {"Boss"}
            await sf.bulk_delete("Contact", [{"Id": i} for i in ids[:5]])
            await sf.bulk_hard_delete("Contact", [{"Id": i} for i in ids[5:]])
            assert await sf.count("Contact", "Id IN :ids", ids=ids) == 0

    sf_env.run(main)


def test_bulk_input_errors_are_clear(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            with pytest.raises(InvalidRequest, match="no rows"):
                await sf.bulk_insert("Lead", [])
            with pytest.raises(InvalidRequest, match="not in the header"):
                await sf.bulk_insert("Lead", [{"LastName": "a"}, {"LastName": "b", "X": 1}])
            with pytest.raises(PermanentError, match="Failed"):
                await sf.bulk_insert("Lead", [{"NoSuchField__c": "a"}])

    sf_env.run(main)


def test_bulk_job_states_is_an_async_iterator_of_job_states(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            result = await sf.bulk_insert("Lead", [{"LastName": "a", "Company": "b"}])
            states = [i.state async for i in sf.bulk_job_states(result.job_ids[0])]
            assert states == ["JobComplete"]

    sf_env.run(main)


def test_bulk_query_streams_csv_pages_using_the_locator(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            rows = [
                row
                async for row in sf.bulk_query(
                    "SELECT Id, LastName FROM Contact WHERE LastName != :x", x="", page_size=10
                )
            ]
            assert len(rows) == 25
            assert set(rows[0]) == {"Id", "LastName"}

    sf_env.run(main)
    pages = [p for m, p, s in sf_env.emulator.requests if p.endswith("/results")]
    assert len(pages) == 3
