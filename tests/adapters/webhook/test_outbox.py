"""The outbox: transactional send, idempotency by id, the payload limit, replay."""

import asyncio

import httpx2
import pytest

from connectors.adapters.webhook import RetrySchedule
from connectors.errors import Conflict, InvalidRequest, NotFound
from connectors.jobs import JobQueue
from tests.adapters.webhook._support import PUBLIC_URL, make_world


def run(coro):
    return asyncio.run(coro)


def test_send_inside_the_callers_transaction_rolls_back_with_it(tmp_path):
    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(200))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        with pytest.raises(RuntimeError):  # noqa: PT012 - the transaction is the point
            async with w.db.session() as session:
                await w.outbox.send("acme", "e", {"a": 1}, ep.id, session=session)
                raise RuntimeError("business write failed")
        assert await JobQueue(w.db).list() == []
        assert (await w.outbox.stats("acme")).pending == 0
        async with w.db.session() as session:
            msg = await w.outbox.send("acme", "e", {"a": 1}, ep.id, session=session)
        await w.drain()
        assert await w.outbox.message_status("acme", msg) == "delivered"
        assert w.requests[0].content == b'{"a":1}'
        await w.close()

    run(main())


def test_send_is_idempotent_by_message_id(tmp_path):
    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(200))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        first = await w.outbox.send("acme", "e", {"a": 1}, ep.id, message_id="msg_order_1")
        second = await w.outbox.send("acme", "e", {"a": 1}, ep.id, message_id="msg_order_1")
        assert first == second == "msg_order_1"
        await w.drain()
        assert len(w.requests) == 1
        with pytest.raises(InvalidRequest):
            await w.outbox.send("acme", "e", {}, ep.id, message_id="has.dot")
        await w.close()

    run(main())


def test_the_payload_limit_raises_invalid_request(tmp_path):
    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(200))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        with pytest.raises(InvalidRequest, match="limit is 262144") as info:
            await w.outbox.send("acme", "e", {"blob": "x" * 262_144}, ep.id)
        assert info.value.fields[0].field == "payload"
        await w.outbox.send("acme", "e", b"x" * 262_144, ep.id)  # exactly the limit is fine
        with pytest.raises(InvalidRequest, match="JSON"):
            await w.outbox.send("acme", "e", {"x": {1, 2}}, ep.id)
        await w.close()

    run(main())


def test_unknown_and_foreign_endpoints_are_not_found(tmp_path):
    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(200))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        with pytest.raises(NotFound):
            await w.outbox.send("other-tenant", "e", {}, ep.id)
        with pytest.raises(NotFound):
            await w.outbox.send("acme", "e", {}, "ep_missing")
        await w.close()

    run(main())


def test_replay_requeues_dead_letters_with_the_same_webhook_id(tmp_path):
    healthy = False

    def handler(request):
        return httpx2.Response(200 if healthy else 500)

    async def main():
        nonlocal healthy
        w = await make_world(tmp_path, handler, schedule=RetrySchedule.of([0, 10]))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        other = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "e", {"n": 1}, ep.id)
        msg2 = await w.outbox.send("acme", "e", {"n": 2}, other.id)
        await w.drain()
        assert {d.message_id for d in await w.outbox.dead_letters("acme")} == {msg, msg2}
        healthy = True
        assert await w.outbox.replay("acme", endpoint_id=ep.id) == [msg]
        await w.drain()
        assert await w.outbox.message_status("acme", msg) == "delivered"
        assert await w.outbox.message_status("acme", msg2) == "dead"
        ids = [r.headers["webhook-id"] for r in w.requests]
        assert (ids.count(msg), ids.count(msg2)) == (3, 2)
        assert ids[-1] == msg
        assert await w.outbox.replay("acme", message_id=msg2) == [msg2]
        await w.drain()
        assert await w.outbox.dead_letters("acme") == []
        with pytest.raises(NotFound):
            await w.outbox.replay("acme", message_id=msg2)
        await w.close()

    run(main())


def test_replay_skips_disabled_endpoints_until_they_are_enabled(tmp_path):
    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(410))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert await w.outbox.replay("acme") == []
        with pytest.raises(Conflict):
            await w.outbox.send("acme", "e", {}, ep.id)
        await w.endpoints.set_enabled("acme", ep.id, True)
        assert await w.outbox.replay(None) == [msg]
        await w.close()

    run(main())
