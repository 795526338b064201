"""Slack, the webhook outbox and a declarative REST connector under 30% faults.

- **Slack** (emulator in process, fault injector, rotating token expired mid-run): reads always
  succeed; ``chat.postMessage`` (not idempotent) never posts a message twice — each text is
  unique and the emulator's channel is counted afterwards — and a post whose answer was lost is
  surfaced, not retried.
- **Webhook** (a real loopback receiver failing 30% of requests: 503 or a dropped connection):
  every message is delivered (at least once, same ``webhook-id`` each time), and the receiver
  never sees an id it was not sent.
- **Declarative REST** (``templates/connectors/github_issues.yaml`` over a small API behind the
  fault injector): reads succeed; creates are never duplicated.

Every surfaced failure is a typed ``ConnectorError`` with a failure audit record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx2

from connectors.adapters.http import HttpConnector
from connectors.adapters.slack import SlackConnector
from connectors.adapters.webhook import WebhookConnector
from connectors.auth import TokenSet
from connectors.clock import FakeClock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.faults import FaultInjector
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig
from tests.adapters.http.support import GITHUB_TOKEN, github_app, template

from ._support import (
    CHAOS_FAULTS,
    CHAOS_RESILIENCE,
    AttemptTimeoutTransport,
    FlakyReceiver,
    Ledger,
    assert_failures_audited,
    audit_events,
    chaos_overrides,
    maybe_processed,
)

TENANT = "acme"
WHSEC = "whsec_" + "Y2hhb3Mtd2ViaG9vay1zZWNyZXQtMzItYnl0ZXMhISE="


async def _collect(items: AsyncIterator[object], cap: int = 20) -> list[object]:
    out: list[object] = []
    async for item in items:
        out.append(item)
        if len(out) >= cap:
            break
    return out


def _hub(tmp_path: Path, clock: FakeClock, transports: dict[str, httpx2.AsyncBaseTransport]) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    for adapter in (SlackConnector, WebhookConnector, HttpConnector):
        registry.register(adapter)
    github = template("github_issues").model_copy(
        update={"resilience": chaos_overrides(), "settings": {"base_url": "http://github.test"}}
    )
    github_settings = {**template("github_issues").settings, "base_url": "http://github.test"}
    github = github.model_copy(update={"settings": github_settings})
    return Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        definitions={
            "slack": ConnectorDefinition.model_validate(
                {
                    "type": "slack",
                    "settings": {"base_url": "http://slack.test/api/"},
                    "resilience": CHAOS_RESILIENCE,
                }
            ),
            "github": github,
        },
        registry=registry,
        transports=transports,
        clock=clock,
    )


def test_slack_posts_are_never_duplicated_and_reads_always_succeed(
    tmp_path: Path, chaos_scale: int
) -> None:
    clock = FakeClock()
    emulator = SlackEmulator(SlackEmulatorConfig(token_rotation=True), clock=clock)
    calls = 30 * chaos_scale
    expiries = "|".join(str(n) for n in range(20, calls * 5, 40))
    injector = FaultInjector(
        emulator.app,
        f"{CHAOS_FAULTS},expire_token_at={expiries},paths=/api/chat.*|/api/conversations.*",
        seed=2,
        clock=clock,
        on_expire_tokens=emulator.expire_tokens,
        rate_limit_body=b'{"ok":false,"error":"ratelimited"}',
    )
    transport = AttemptTimeoutTransport(httpx2.ASGITransport(app=injector), clock)
    hub = _hub(tmp_path, clock, {"slack": transport})
    issued = emulator.issue_token(rotating=True)
    token = TokenSet(
        access_token=Secret(issued.access_token),
        refresh_token=Secret(issued.refresh_token),
        expires_at=clock.time() + issued.expires_in,
        scopes=issued.scopes,
    )
    reads, posts = Ledger(), Ledger()
    settings = {
        "oauth_credential": "slack-bot",
        "client_id": emulator.config.client_id,
        "client_secret": Secret(emulator.config.client_secret),
        "post_message_burst": 1000,
    }

    async def main() -> None:
        try:
            await hub.start()
            await hub.tokens.install(TENANT, "slack-bot", token)
            async with hub.open("slack", tenant_id=TENANT, settings=settings) as slack:
                assert isinstance(slack, SlackConnector)
                for n in range(calls):
                    await posts.call(
                        f"chaos post {n}", slack.post_message("general", f"chaos post {n}")
                    )
                    await reads.call(
                        f"history-{n}", _collect(slack.history("general", page_size=5))
                    )
            events = await audit_events(hub, TENANT)
        finally:
            await hub.aclose()
        assert injector.counters["drop_after"]
        assert injector.counters["5xx"]
        assert injector.counters["expire_tokens"]
        assert reads.failed == {}, reads.failed
        assert_failures_audited(posts, events)
        texts = [m.text for m in emulator.channel("general").messages]
        for text in set(texts):
            assert texts.count(text) == 1 or not text.startswith("chaos post"), text
        for key in posts.succeeded:
            assert texts.count(key) == 1, key
        for key, error in posts.failed.items():
            if not maybe_processed(error):
                assert key not in texts, (key, error)

    asyncio.run(main())


def test_webhook_messages_reach_a_flaky_loopback_receiver_exactly_as_sent(
    tmp_path: Path, chaos_scale: int
) -> None:
    clock = FakeClock(wall_start=1_700_000_000.0)
    hub = _hub(tmp_path, clock, {})
    receiver = FlakyReceiver(fail_rate=0.3, seed=3)
    messages = 20 * chaos_scale
    sent = Ledger()

    async def main() -> None:
        try:
            await hub.start()
            await hub.services.credentials.put(TENANT, "hook", {"value": WHSEC}, actor="test")
            async with (
                receiver.running(),
                hub.open(
                    "webhook",
                    tenant_id=TENANT,
                    settings={"retry_schedule": [0] * 30, "timeout": 5},
                ) as hooks,
            ):
                assert isinstance(hooks, WebhookConnector)
                endpoint = await hooks.create_endpoint(
                    f"http://127.0.0.1:{receiver.port}/hook",
                    ["${secret:hook}"],
                    allow_nets=["127.0.0.1/32"],
                )
                ids = []
                for n in range(messages):
                    msg = await sent.call(
                        f"send-{n}", hooks.send("lead.created", {"n": n}, endpoint.id)
                    )
                    ids.append(str(msg))
                for msg in ids:
                    for _ in range(30):
                        result = await hooks.deliver_now(msg)
                        if result is None or result.outcome == "success":
                            break
                        if result.outcome == "circuit_open":
                            clock.advance(120)
                    else:
                        raise AssertionError(f"{msg} was never delivered")
            events = await audit_events(hub, TENANT)
        finally:
            await hub.aclose()
        assert sent.failed == {}
        assert receiver.failures, "the receiver never failed"
        assert set(receiver.delivered) == set(ids)  # every message, and nothing else
        assert_failures_audited(sent, events)

    asyncio.run(main())


def test_declarative_rest_reads_succeed_and_creates_are_never_duplicated(
    tmp_path: Path, chaos_scale: int
) -> None:
    clock = FakeClock()
    app = github_app(issues=12)
    injector = FaultInjector(app, CHAOS_FAULTS, seed=4, clock=clock)
    transport = AttemptTimeoutTransport(httpx2.ASGITransport(app=injector), clock)
    hub = _hub(tmp_path, clock, {"github": transport})
    reads, creates = Ledger(), Ledger()
    calls = 30 * chaos_scale

    async def main() -> None:
        try:
            await hub.start()
            await hub.services.credentials.put(
                TENANT, "github_token", {"value": GITHUB_TOKEN}, actor="test"
            )
            async with hub.open("github", tenant_id=TENANT) as gh:
                for n in range(calls):
                    await reads.call(
                        f"list-{n}",
                        gh.list_issues(owner="acme", repo="app", per_page=5),  # type: ignore[attr-defined]
                    )
                    await creates.call(
                        f"issue {n}",
                        gh.create_issue(owner="acme", repo="app", title=f"issue {n}"),  # type: ignore[attr-defined]
                    )
            events = await audit_events(hub, TENANT)
        finally:
            await hub.aclose()
        assert injector.counters["drop_after"]
        assert injector.counters["5xx"]
        assert reads.failed == {}, reads.failed
        assert_failures_audited(creates, events)
        titles = [str(body["title"]) for body in app.state.created]
        assert len(titles) == len(set(titles)), "a create was duplicated"
        for key in creates.succeeded:
            assert key in titles
        for key, error in creates.failed.items():
            if not maybe_processed(error):
                assert key not in titles, (key, error)

    asyncio.run(main())
