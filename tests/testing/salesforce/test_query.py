"""REST query and queryAll: pages, locators, batch sizes, deleted rows, counts, flat memory."""

from __future__ import annotations

import gc

import psutil

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec
from connectors.testing.salesforce.query import parse_batch_size

from ._support import V, bearer, client, make_emulator, run


def _emulator(**counts: int):
    return make_emulator(SalesforceEmulatorConfig(seed=SeedSpec(**counts)))


def test_batch_size_header_is_clamped_to_200_through_2000():
    assert parse_batch_size("batchSize=500", 2000) == 500
    assert parse_batch_size("batchSize=10", 2000) == 200
    assert parse_batch_size("batchSize=99999", 2000) == 2000
    assert parse_batch_size(None, 2000) == 2000
    assert parse_batch_size("batchSize=abc", 2000) == 2000


def test_paging_follows_next_records_url_with_the_requested_batch_size():
    emulator, _ = _emulator(contacts=1234)

    async def main():
        async with client(emulator) as http:
            headers = {**await bearer(http), "Sforce-Query-Options": "batchSize=500"}
            page = (
                await http.get(
                    f"{V}/query", params={"q": "SELECT Id FROM Contact"}, headers=headers
                )
            ).json()
            pages = [page]
            while not page["done"]:
                page = (await http.get(page["nextRecordsUrl"], headers=headers)).json()
                pages.append(page)
            return pages

    pages = run(main)
    assert [len(p["records"]) for p in pages] == [500, 500, 234]
    assert {p["totalSize"] for p in pages} == {1234}
    assert pages[0]["nextRecordsUrl"].startswith(f"{V}/query/01g")
    assert pages[0]["nextRecordsUrl"].endswith("-500")
    assert "nextRecordsUrl" not in pages[-1]
    ids = [r["Id"] for p in pages for r in p["records"]]
    assert len(set(ids)) == 1234
    emulator.close()


def test_default_page_is_2000_records_and_a_locator_can_be_replayed():
    emulator, _ = _emulator(accounts=2500)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            first = (
                await http.get(
                    f"{V}/query", params={"q": "SELECT Id FROM Account"}, headers=headers
                )
            ).json()
            second = (await http.get(first["nextRecordsUrl"], headers=headers)).json()
            locator = first["nextRecordsUrl"].rsplit("/", 1)[1].split("-")[0]
            # an earlier position replays the query from there
            replay = await http.get(f"{V}/query/{locator}-100", headers=headers)
            bogus = await http.get(f"{V}/query/01gXXXXXXXXXXXXXXX-2000", headers=headers)
            return first, second, replay, bogus

    first, second, replay, bogus = run(main)
    assert len(first["records"]) == 2000
    assert len(second["records"]) == 500
    assert second["done"] is True
    # the cursor was closed when its last page was read
    assert replay.status_code == 400
    assert replay.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    assert bogus.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
    emulator.close()


def test_query_all_includes_deleted_records_and_query_does_not():
    emulator, _ = _emulator(leads=5)

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
            assert (
                await http.delete(f"{V}/sobjects/Lead/{ids[0]}", headers=headers)
            ).status_code == 204
            live = (
                await http.get(
                    f"{V}/query", params={"q": "SELECT Id, IsDeleted FROM Lead"}, headers=headers
                )
            ).json()
            every = (
                await http.get(
                    f"{V}/queryAll", params={"q": "SELECT Id, IsDeleted FROM Lead"}, headers=headers
                )
            ).json()
            deleted = (
                await http.get(
                    f"{V}/queryAll",
                    params={"q": "SELECT Id FROM Lead WHERE IsDeleted = true"},
                    headers=headers,
                )
            ).json()
            return ids, live, every, deleted

    ids, live, every, deleted = run(main)
    assert live["totalSize"] == 4
    assert every["totalSize"] == 5
    assert [r["Id"] for r in deleted["records"]] == [ids[0]]
    assert any(r["IsDeleted"] for r in every["records"])
    emulator.close()


def test_count_queries_return_total_size_or_an_aggregate_row():
    emulator, _ = _emulator(contacts=300)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            star = (
                await http.get(
                    f"{V}/query", params={"q": "SELECT COUNT() FROM Contact"}, headers=headers
                )
            ).json()
            field = (
                await http.get(
                    f"{V}/query",
                    params={"q": "SELECT COUNT(Id) FROM Contact WHERE LeadSource = 'Web'"},
                    headers=headers,
                )
            ).json()
            return star, field

    star, field = run(main)
    assert star == {"totalSize": 300, "done": True, "records": []}
    assert field["records"][0]["attributes"] == {"type": "AggregateResult"}
    assert 0 < field["records"][0]["expr0"] < 300
    emulator.close()


def test_parent_fields_come_back_nested_with_their_own_attributes():
    emulator, _ = _emulator(accounts=3, contacts=3)
    orphan = emulator.insert("Contact", {"LastName": "Orphan"})

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            q = (
                "SELECT Id, Account.Name, Account.Industry FROM Contact "
                "ORDER BY CreatedDate DESC NULLS LAST"
            )
            return (await http.get(f"{V}/query", params={"q": q}, headers=headers)).json()

    body = run(main)
    seeded = [r for r in body["records"] if r["Id"] != orphan]
    account = seeded[0]["Account"]
    assert account["attributes"]["type"] == "Account"
    assert set(account) == {"attributes", "Name", "Industry"}
    assert next(r for r in body["records"] if r["Id"] == orphan)["Account"] is None
    emulator.close()


def test_limit_offset_and_order_by_apply_in_soql_order():
    emulator, _ = _emulator(accounts=50)

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            full = (
                await http.get(
                    f"{V}/query",
                    params={"q": "SELECT Name FROM Account ORDER BY Name"},
                    headers=headers,
                )
            ).json()
            window = (
                await http.get(
                    f"{V}/query",
                    params={"q": "SELECT Name FROM Account ORDER BY Name LIMIT 5 OFFSET 10"},
                    headers=headers,
                )
            ).json()
            too_far = await http.get(
                f"{V}/query", params={"q": "SELECT Name FROM Account OFFSET 2001"}, headers=headers
            )
            return full, window, too_far

    full, window, too_far = run(main)
    names = [r["Name"] for r in full["records"]]
    assert names == sorted(names, key=str.lower)
    assert [r["Name"] for r in window["records"]] == names[10:15]
    assert window["totalSize"] == 5
    assert too_far.json()[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    emulator.close()


def test_query_errors_use_the_soql_error_codes():
    emulator, _ = _emulator()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            out = {}
            for q in (
                "SELECT Id FROM Nope",
                "SELECT Id FRM Account",
                "SELECT Nope FROM Account",
                "",
            ):
                response = await http.get(f"{V}/query", params={"q": q}, headers=headers)
                out[q] = (response.status_code, response.json()[0]["errorCode"])
            return out

    out = run(main)
    assert out["SELECT Id FROM Nope"] == (400, "INVALID_TYPE")
    assert out["SELECT Id FRM Account"] == (400, "MALFORMED_QUERY")
    assert out["SELECT Nope FROM Account"] == (400, "INVALID_FIELD")
    assert out[""] == (400, "MALFORMED_QUERY")
    emulator.close()


def test_paging_a_large_query_keeps_memory_flat():
    # 100,000 seeded contacts would take well over 30 MB if a query materialised them; peak RSS
    # sampled after every page must stay under that. (benchmarks/emulator_query_memory.py runs
    # the same walk over 1,000,000 records.)
    count = 100_000
    emulator, _ = _emulator(contacts=count)
    process = psutil.Process()

    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            gc.collect()
            baseline = peak = process.memory_info().rss
            q = "SELECT Id, Name, Email FROM Contact"
            page = (await http.get(f"{V}/query", params={"q": q}, headers=headers)).json()
            seen = len(page["records"])
            while not page["done"]:
                page = (await http.get(page["nextRecordsUrl"], headers=headers)).json()
                seen += len(page["records"])
                peak = max(peak, process.memory_info().rss)
            return seen, peak - baseline

    seen, growth = run(main)
    assert seen == count
    assert growth < 30 * 1024 * 1024, f"peak RSS growth {growth / 1e6:.1f} MB"
    assert emulator.org.store.overlay_size == 1  # only the configured user's record
    emulator.close()
