"""Delivery: the retry schedule, same webhook-id, dead letters, disabling, blocking, the log."""

import asyncio

import httpx2
import pytest

from connectors.adapters.webhook import DeliveryOptions, DisablePolicy, RetrySchedule
from connectors.adapters.webhook.schedule import DEFAULT_DELAYS
from connectors.adapters.webhook.verify import verify_signature
from connectors.clock import FakeClock
from connectors.secrets import Secret
from tests.adapters.webhook._support import PUBLIC_URL, WHSEC, make_world


def run(coro):
    return asyncio.run(coro)


def fail(status=500, **headers):
    return lambda request: httpx2.Response(status, headers=headers, text="nope")


def test_attempt_times_follow_the_default_schedule_with_the_same_webhook_id(tmp_path):
    async def main():
        w = await make_world(tmp_path, fail())
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        start = w.clock.time()
        msg = await w.outbox.send("acme", "order.created", {"id": 1}, ep.id)
        await w.drain()
        times = [float(r.headers["webhook-timestamp"]) - start for r in w.requests]
        expected, total = [], 0.0
        for delay in DEFAULT_DELAYS:
            total += delay
            expected.append(total)
        assert times == expected
        assert {r.headers["webhook-id"] for r in w.requests} == {msg}
        # every attempt's signature verifies at its own time
        for request in w.requests:
            clock = FakeClock(wall_start=float(request.headers["webhook-timestamp"]))
            verify_signature(
                "standard", request.headers, request.content, [Secret(WHSEC)], clock=clock
            )
        assert await w.outbox.message_status("acme", msg) == "dead"
        [letter] = await w.outbox.dead_letters("acme")
        assert letter.message_id == msg
        assert letter.attempts == len(DEFAULT_DELAYS)
        assert len(await w.outbox.attempts("acme", message_id=msg)) == len(DEFAULT_DELAYS)
        await w.close()

    run(main())


def test_a_success_ends_the_schedule(tmp_path):
    answers = iter([500, 503, 204])

    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(next(answers)))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "e", {"a": 1}, ep.id)
        await w.drain()
        assert await w.outbox.message_status("acme", msg) == "delivered"
        log = await w.outbox.attempts("acme", endpoint_id=ep.id)
        assert [(a.attempt, a.outcome, a.status) for a in log] == [
            (1, "failure", 500),
            (2, "failure", 503),
            (3, "success", 204),
        ]
        assert await w.outbox.dead_letters("acme") == []
        await w.close()

    run(main())


def test_retry_after_lengthens_the_wait(tmp_path):
    answers = iter([httpx2.Response(429, headers={"Retry-After": "600"}), httpx2.Response(200)])

    async def main():
        w = await make_world(tmp_path, lambda r: next(answers))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        stamps = [int(r.headers["webhook-timestamp"]) for r in w.requests]
        assert stamps[1] - stamps[0] == 600
        await w.close()

    run(main())


def test_the_attempts_log_keeps_a_short_redacted_excerpt(tmp_path):
    body = "Bearer abcdefghijklmnopqrstuvwxyz0123456789 " + "x" * 2000

    async def main():
        w = await make_world(
            tmp_path, lambda r: httpx2.Response(400, text=body), schedule=RetrySchedule.of([0])
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        [attempt] = await w.outbox.attempts("acme")
        assert len(attempt.response_excerpt) <= 500
        assert "abcdefghijklmnopqrstuvwxyz0123456789" not in attempt.response_excerpt
        assert attempt.status == 400
        assert attempt.latency_ms is not None
        assert WHSEC not in repr(attempt.to_dict())
        await w.close()

    run(main())


def test_redirects_are_failures_and_not_followed(tmp_path):
    async def main():
        w = await make_world(
            tmp_path,
            fail(307, location="http://169.254.169.254/"),
            schedule=RetrySchedule.of([0]),
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert len(w.requests) == 1
        [attempt] = await w.outbox.attempts("acme")
        assert attempt.error == "redirects are not followed"
        await w.close()

    run(main())


def test_a_url_resolving_to_a_private_address_is_blocked_and_dead_lettered(tmp_path):
    async def private_dns(host):
        return ["10.0.0.5"]

    async def main():
        w = await make_world(tmp_path, fail(), resolver=private_dns)
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert w.requests == []
        [attempt] = await w.outbox.attempts("acme")
        assert attempt.outcome == "blocked"
        assert "private" in attempt.error
        assert await w.outbox.message_status("acme", msg) == "dead"
        await w.close()

    run(main())


def test_410_gone_disables_the_endpoint_with_an_audit_event(tmp_path):
    async def main():
        w = await make_world(tmp_path, fail(410))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        endpoint = await w.endpoints.get("acme", ep.id)
        assert not endpoint.enabled
        assert "410" in endpoint.disabled_reason
        [event] = w.audit.events
        assert (event.kind, event.target, event.tenant) == (
            "webhook.endpoint.disabled",
            ep.id,
            "acme",
        )
        await w.close()

    run(main())


def test_consecutive_dead_letters_disable_the_endpoint_and_later_messages_are_refused(tmp_path):
    from connectors.errors import Conflict

    async def main():
        w = await make_world(
            tmp_path,
            fail(),
            schedule=RetrySchedule.of([0]),
            options=DeliveryOptions(disable=DisablePolicy(failing_for=None, dead_letters=2)),
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert (await w.endpoints.get("acme", ep.id)).enabled
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert not (await w.endpoints.get("acme", ep.id)).enabled
        assert len(w.audit.events) == 1
        with pytest.raises(Conflict, match="disabled"):
            await w.outbox.send("acme", "e", {}, ep.id)
        stats = await w.outbox.stats("acme")
        assert (stats.dead_letters, stats.disabled_endpoints) == (2, 1)
        await w.close()

    run(main())


def test_sustained_failure_disables_the_endpoint(tmp_path):
    async def main():
        w = await make_world(
            tmp_path,
            fail(),
            schedule=RetrySchedule.of([0, 100, 100]),
            options=DeliveryOptions(disable=DisablePolicy(failing_for=150, dead_letters=None)),
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        endpoint = await w.endpoints.get("acme", ep.id)
        assert not endpoint.enabled
        assert "failed for" in endpoint.disabled_reason
        await w.close()

    run(main())


def test_abort_message_header_stops_retries(tmp_path):
    async def main():
        w = await make_world(tmp_path, fail(500, **{"webhook-delivery": "abort-message"}))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        assert len(w.requests) == 1
        assert await w.outbox.message_status("acme", msg) == "dead"
        await w.close()

    run(main())


def test_a_missing_secret_is_a_failed_attempt_that_names_the_reference_only(tmp_path):
    async def main():
        w = await make_world(tmp_path, fail(), schedule=RetrySchedule.of([0]))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:other}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        [attempt] = await w.outbox.attempts("acme")
        assert "CredentialMissing" in attempt.error
        assert "secret:other" in attempt.error
        assert w.requests == []
        await w.close()

    run(main())


def test_an_open_breaker_postpones_without_spending_an_attempt(tmp_path):
    from connectors.resilience import BreakerPolicy

    async def main():
        w = await make_world(
            tmp_path,
            fail(),
            schedule=RetrySchedule.of([0, 1, 1, 1]),
            options=DeliveryOptions(breaker=BreakerPolicy(failure_threshold=2, reset_timeout=50)),
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.drain()
        stamps = [int(r.headers["webhook-timestamp"]) for r in w.requests]
        assert stamps[1] - stamps[0] == 1
        assert stamps[2] - stamps[1] >= 50  # the breaker held the third attempt back
        assert len(w.requests) == 4
        await w.close()

    run(main())


def test_deliveries_running_together_share_their_database_round_trips(tmp_path):
    from sqlalchemy import event

    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(204))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        ids = [await w.outbox.send("acme", "e", {"n": n}, ep.id) for n in range(20)]
        seen = []

        @event.listens_for(w.db.engine.sync_engine, "before_cursor_execute")
        def record(conn, cursor, statement, params, context, executemany):
            seen.append(" ".join(statement.split()[:3]))

        assert await w.runner.run_pending() == 20  # 5 rounds of 4 concurrent jobs
        loads = [s for s in seen if s.startswith("SELECT webhook_messages.id")]
        writes = [s for s in seen if s.startswith("INSERT INTO webhook_attempts")]
        assert len(loads) == 5
        assert len(writes) == 5
        for message_id in ids:
            assert await w.outbox.message_status("acme", message_id) == "delivered"
        assert len(w.requests) == 20
        await w.close()

    run(main())


def test_a_success_after_failures_clears_the_endpoints_failure_run(tmp_path):
    answers = iter([500, 204])

    async def main():
        w = await make_world(tmp_path, lambda r: httpx2.Response(next(answers)))
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        await w.outbox.send("acme", "e", {}, ep.id)
        await w.runner.run_pending()
        assert (await w.endpoints.get("acme", ep.id)).failing_since is not None
        await w.drain()
        assert (await w.endpoints.get("acme", ep.id)).failing_since is None
        await w.close()

    run(main())
