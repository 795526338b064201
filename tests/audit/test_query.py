"""Listing, exporting and verifying the stored audit log, including tampered tables."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, update

from connectors.audit.query import (
    EXPORT_COLUMNS,
    AuditQuery,
    export,
    list_events,
    tenants,
    verify,
    verify_all,
)
from connectors.audit.sinks import SqlAuditSink
from connectors.clock import FakeClock
from connectors.errors import InvalidRequest
from connectors.storage.audit import AuditChainHeadRow, AuditEventRow

from ._support import database, make_event


async def seed(db, clock: FakeClock, n: int = 12):
    """n events alternating tenants a/b, one second apart; some failures."""
    events = []
    for i in range(n):
        events.append(
            make_event(
                clock,
                tenant="ab"[i % 2],
                n=i,
                outcome="failure" if i % 3 == 0 else "success",
                actor=f"user{i % 4}",
                kind="credential.put" if i == 5 else "operation",
            )
        )
        clock.advance(1)
    await SqlAuditSink(db).write_batch(events)
    return events


def test_pages_are_newest_first_and_the_cursor_walks_every_event_once(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            events = await seed(db, FakeClock())
            seen, cursor = [], None
            while True:
                page = await list_events(db, AuditQuery(limit=5, cursor=cursor))
                seen.extend(r.event.id for r in page.events)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert seen == [e.id for e in reversed(events)]

    asyncio.run(main())


def test_filters_narrow_the_results(tmp_path):
    async def main():
        clock = FakeClock()
        async with database(tmp_path) as db:
            events = await seed(db, clock)

            async def ids(**filters):
                page = await list_events(db, AuditQuery(**filters))
                return {r.event.id for r in page.events}

            assert await ids(tenant="a") == {e.id for e in events if e.tenant == "a"}
            assert await ids(outcome="failure") == {e.id for e in events if e.outcome == "failure"}
            assert await ids(actor="user1") == {e.id for e in events if e.actor == "user1"}
            assert await ids(kind="credential.put") == {events[5].id}
            assert await ids(operation="delete") == set()
            assert await ids(connector="salesforce") == {e.id for e in events}
            since, until = events[3].timestamp, events[6].timestamp
            assert await ids(since=since, until=until) == {e.id for e in events[3:6]}

    asyncio.run(main())


def test_bad_queries_get_a_clear_error():
    with pytest.raises(InvalidRequest, match="limit"):
        AuditQuery(limit=0)
    with pytest.raises(InvalidRequest, match="outcome"):
        AuditQuery(outcome="ok")
    with pytest.raises(InvalidRequest, match="timezone"):
        AuditQuery(since=datetime(2024, 1, 1))


def test_a_forged_cursor_is_refused(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            for cursor in ("garbage", "W10", "WyJ4IiwxLDJd"):
                with pytest.raises(InvalidRequest, match="cursor"):
                    await list_events(db, AuditQuery(cursor=cursor))

    asyncio.run(main())


def test_jsonl_export_streams_every_match_oldest_first_with_chain_fields(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            events = await seed(db, FakeClock(), n=7)
            lines = [line async for line in export(db, AuditQuery(tenant="a", limit=1))]
            data = [json.loads(line) for line in lines]
            assert [d["id"] for d in data] == [e.id for e in events if e.tenant == "a"]
            assert [d["seq"] for d in data] == [1, 2, 3, 4]
            assert {"prev_hash", "hash", "details", "timestamp"} <= set(data[0])

    asyncio.run(main())


def test_csv_export_has_a_header_and_defuses_spreadsheet_formulas(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            await SqlAuditSink(db).write_batch([make_event(clock, target="=HYPERLINK(1)")])
            text = "".join([line async for line in export(db, AuditQuery(), "csv")])
            rows = list(csv.reader(io.StringIO(text)))
            assert tuple(rows[0]) == EXPORT_COLUMNS
            row = dict(zip(rows[0], rows[1], strict=True))
            assert row["target"] == "'=HYPERLINK(1)"
            assert json.loads(row["details"]) == {"n": 0}
            with pytest.raises(InvalidRequest, match="format"):
                [line async for line in export(db, AuditQuery(), "xml")]  # type: ignore[arg-type]

    asyncio.run(main())


# -- tampering with the stored table --------------------------------------------------------


async def tamper(db, *statements):
    async with db.session() as s:
        for stmt in statements:
            await s.execute(stmt)


T = AuditEventRow


def row(tenant, seq):
    return (T.tenant == tenant, T.seq == seq)


TAMPERINGS = {
    "edit outcome": [update(T).where(*row("a", 3)).values(outcome="failure")],
    "edit details": [update(T).where(*row("a", 2)).values(details='{"n":99}')],
    "edit timestamp": [update(T).where(*row("a", 2)).values(ts_us=T.ts_us + 1)],
    "malformed details": [update(T).where(*row("a", 2)).values(details="{not json")],
    "delete middle row": [delete(T).where(*row("a", 3))],
    "delete first row": [delete(T).where(*row("a", 1))],
    "delete last row": [delete(T).where(*row("a", 6))],
    "reorder rows": [
        update(T).where(*row("a", 2)).values(seq=-2),
        update(T).where(*row("a", 3)).values(seq=2),
        update(T).where(*row("a", -2)).values(seq=3),
    ],
    "move a row to another tenant": [update(T).where(*row("b", 6)).values(tenant="a", seq=7)],
    "rewind the head": [
        update(AuditChainHeadRow).where(AuditChainHeadRow.tenant == "a").values(last_seq=5)
    ],
    "delete the head": [delete(AuditChainHeadRow).where(AuditChainHeadRow.tenant == "a")],
}


def test_an_untouched_log_verifies(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            await seed(db, FakeClock())
            results = await verify_all(db)
            assert set(results) == {"a", "b"} == set(await tenants(db))
            assert all(r.ok and r.events == 6 for r in results.values())

    asyncio.run(main())


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_tampering_with_a_row_is_detected(tmp_path, name):
    async def main():
        async with database(tmp_path) as db:
            await seed(db, FakeClock())
            assert (await verify(db, "a")).ok
            await tamper(db, *TAMPERINGS[name])
            result = await verify(db, "a")
            assert not result.ok
            assert result.problems

    asyncio.run(main())


def test_tampering_in_one_tenant_leaves_the_others_valid(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            await seed(db, FakeClock())
            await tamper(db, *TAMPERINGS["edit outcome"])
            results = await verify_all(db)
            assert not results["a"].ok
            assert results["b"].ok

    asyncio.run(main())


# -- properties against the real table ------------------------------------------------------

writes = st.lists(
    st.lists(st.sampled_from(["acme", "globex", "initech"]), min_size=1, max_size=8),
    min_size=1,
    max_size=5,
)


def run_in_db(coro_fn):
    with tempfile.TemporaryDirectory() as d:

        async def main():
            async with database(Path(d)) as db:
                await coro_fn(db)

        asyncio.run(main())


async def write_batches(db, batches) -> dict[str, int]:
    clock = FakeClock()
    sink = SqlAuditSink(db)
    counts: dict[str, int] = {}
    for batch in batches:
        await sink.write_batch([make_event(clock, tenant=t, n=i) for i, t in enumerate(batch)])
        for t in batch:
            counts[t] = counts.get(t, 0) + 1
        clock.advance(0.5)
    return counts


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes)
def test_random_writes_across_tenants_verify(batches):
    async def check(db):
        counts = await write_batches(db, batches)
        results = await verify_all(db)
        assert {t: r.events for t, r in results.items()} == counts
        assert all(r.ok for r in results.values())

    run_in_db(check)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(writes, st.data())
def test_random_single_row_tampering_is_detected(batches, data):
    async def check(db):
        counts = await write_batches(db, batches)
        tenant = data.draw(st.sampled_from(sorted(counts)))
        seq = data.draw(st.integers(1, counts[tenant]))
        field = data.draw(st.sampled_from(["actor", "outcome", "details", "delete", "ts", "hash"]))
        where = (T.tenant == tenant, T.seq == seq)
        changes = {
            "actor": update(T).where(*where).values(actor="mallory"),
            "outcome": update(T).where(*where).values(outcome="denied"),
            "details": update(T).where(*where).values(details='{"n":-1}'),
            "delete": delete(T).where(*where),
            "ts": update(T).where(*where).values(ts_us=T.ts_us - 1_000_000),
            "hash": update(T).where(*where).values(hash="a" * 64),
        }
        await tamper(db, changes[field])
        assert not (await verify(db, tenant)).ok

    run_in_db(check)


def test_since_and_until_take_any_timezone(tmp_path):
    async def main():
        clock = FakeClock()
        async with database(tmp_path) as db:
            events = await seed(db, clock, n=4)
            cest = events[1].timestamp.astimezone(timezone(timedelta(hours=2)))
            page = await list_events(db, AuditQuery(since=cest))
            assert {r.event.id for r in page.events} == {e.id for e in events[1:]}

    asyncio.run(main())
