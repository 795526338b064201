"""``connectors webhooks``: list-dead, attempts and replay against a SQLite file."""

import asyncio
import json

import httpx2
from typer.testing import CliRunner

from connectors.adapters.webhook import RetrySchedule
from connectors.cli.webhooks import webhooks_app
from tests.adapters.webhook._support import PUBLIC_URL, make_world


def test_list_dead_attempts_and_replay(tmp_path):
    async def setup():
        w = await make_world(
            tmp_path, lambda r: httpx2.Response(500), schedule=RetrySchedule.of([0])
        )
        ep = await w.endpoints.create("acme", PUBLIC_URL, ["${secret:hook}"])
        msg = await w.outbox.send("acme", "order.created", {}, ep.id)
        await w.drain()
        await w.close()
        return ep.id, msg

    endpoint, msg = asyncio.run(setup())
    url = f"sqlite+aiosqlite:///{tmp_path / 'webhooks.db'}"
    runner = CliRunner()

    result = runner.invoke(webhooks_app, ["list-dead", "--json", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert [d["message_id"] for d in json.loads(result.output)] == [msg]

    result = runner.invoke(webhooks_app, ["attempts", "--id", msg, "--database-url", url])
    assert result.exit_code == 0
    assert "500" in result.output

    result = runner.invoke(webhooks_app, ["replay", "--endpoint", endpoint, "--database-url", url])
    assert result.exit_code == 0
    assert msg in result.output

    result = runner.invoke(webhooks_app, ["replay", "--id", msg, "--database-url", url])
    assert result.exit_code == 1
    assert "not in the dead-letter list" in result.output
