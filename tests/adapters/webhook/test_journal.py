"""The batched hot path: one SELECT per batch of loads, one transaction per batch of successes."""

import asyncio
from collections import Counter

import pytest
from sqlalchemy import event, select, text

from connectors.adapters.webhook import EndpointStore, WebhookOutbox
from connectors.adapters.webhook.journal import DeliveryJournal, Success
from connectors.adapters.webhook.tables import WebhookEndpointRow
from tests.adapters.webhook._support import PUBLIC_URL
from tests.jobs._support import make_db


def run(coro):
    return asyncio.run(coro)


def count_statements(db) -> Counter:
    seen: Counter = Counter()

    @event.listens_for(db.engine.sync_engine, "before_cursor_execute")
    def record(conn, cursor, statement, params, context, executemany):
        seen[statement.split()[0].upper()] += 1

    @event.listens_for(db.engine.sync_engine, "commit")
    def committed(conn):
        seen["COMMIT"] += 1

    return seen


async def setup(tmp_path, n=5, tenant="acme"):
    db = await make_db(tmp_path)
    ep = await EndpointStore(db).create(tenant, PUBLIC_URL, ["${secret:hook}"])
    outbox = WebhookOutbox(db)
    ids = [await outbox.send(tenant, "e", {"n": i}, ep.id) for i in range(n)]
    return db, ep, outbox, ids


def success(ep, message_id, attempt=1, at=100.0):
    return Success(message_id, ep.tenant, ep.id, attempt, at, 204, 1.5, "ok")


def test_concurrent_loads_share_one_select_and_each_gets_its_own_message(tmp_path):
    async def main():
        db, ep, _, ids = await setup(tmp_path)
        journal = DeliveryJournal(db)
        seen = count_statements(db)
        loaded = await asyncio.gather(*(journal.load(i) for i in [*ids, "msg_unknown"]))
        assert seen["SELECT"] == 1
        assert [m.id for m in loaded[:-1]] == ids
        assert loaded[-1] is None
        assert {m.endpoint for m in loaded[:-1]} == {ep}  # parsed once, equal to the stored one
        assert all(m.status == "pending" and m.attempts == 0 for m in loaded[:-1])
        assert loaded[0].payload == b'{"n":0}'
        await db.dispose()

    run(main())


def test_a_message_whose_endpoint_was_deleted_loads_without_an_endpoint(tmp_path):
    async def main():
        db, ep, _, [msg] = await setup(tmp_path, n=1)
        async with db.session() as s:
            await s.delete(await s.get(WebhookEndpointRow, ep.id))
        loaded = await DeliveryJournal(db).load(msg)
        assert loaded.endpoint is None
        assert loaded.endpoint_id == ep.id
        await db.dispose()

    run(main())


def test_concurrent_successes_commit_in_one_transaction_with_their_attempts(tmp_path):
    async def main():
        db, ep, outbox, ids = await setup(tmp_path)
        journal = DeliveryJournal(db)
        seen = count_statements(db)
        await asyncio.gather(*(journal.record_success(success(ep, i)) for i in ids))
        assert seen["COMMIT"] == 1
        assert seen["INSERT"] == 1  # executemany
        for message_id in ids:
            assert await outbox.message_status("acme", message_id) == "delivered"
            [attempt] = await outbox.attempts("acme", message_id=message_id)
            assert (attempt.outcome, attempt.status, attempt.latency_ms) == ("success", 204, 1.5)
            assert attempt.response_excerpt == "ok"
        await db.dispose()

    run(main())


def test_a_success_ends_the_endpoints_failure_run(tmp_path):
    async def main():
        db, ep, _, [msg] = await setup(tmp_path, n=1)
        async with db.session() as s:
            row = await s.get(WebhookEndpointRow, ep.id)
            row.failing_since, row.consecutive_dead = 50.0, 3
        await DeliveryJournal(db).record_success(success(ep, msg))
        async with db.session() as s:
            row = (await s.execute(select(WebhookEndpointRow))).scalar_one()
            assert (row.failing_since, row.consecutive_dead) == (None, 0)
        await db.dispose()

    run(main())


def test_a_failed_write_reports_failure_and_leaves_the_message_pending(tmp_path):
    async def main():
        db, ep, outbox, [msg] = await setup(tmp_path, n=1)
        async with db.engine.begin() as conn:
            await conn.execute(text("DROP TABLE webhook_attempts"))
        with pytest.raises(Exception, match="webhook_attempts"):
            await DeliveryJournal(db).record_success(success(ep, msg))
        # nothing half-written: the delivered state rolled back with the attempt row
        assert await outbox.message_status("acme", msg) == "pending"
        await db.dispose()

    run(main())
