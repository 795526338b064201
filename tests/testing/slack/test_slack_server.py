"""The emulator served over loopback by uvicorn, as the CLI will run it."""

from __future__ import annotations

import asyncio

import httpx2

from connectors.testing.slack import SlackEmulatorConfig, build_server


async def _with_server(config, faults, body):
    server, emulator = build_server("127.0.0.1", 0, config, faults=faults, log_level="critical")
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(500):
            if server.started:
                break
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            return await body(client, emulator)
    finally:
        server.should_exit = True
        await task


def test_emulator_answers_over_loopback() -> None:
    async def body(client, emulator):
        headers = {"Authorization": f"Bearer {emulator.config.bot_token}"}
        posted = await client.post(
            "/api/chat.postMessage", data={"channel": "C00000001", "text": "hi"}, headers=headers
        )
        step1 = await client.post(
            "/api/files.getUploadURLExternal",
            data={"filename": "a.txt", "length": "2"},
            headers=headers,
        )
        uploaded = await client.post(step1.json()["upload_url"], content=b"hi")
        return posted.json(), uploaded.text

    posted, uploaded = asyncio.run(_with_server(SlackEmulatorConfig(), None, body))
    assert posted["ok"] is True
    assert uploaded == "OK - 2"


def test_fault_spec_is_applied_when_serving() -> None:
    async def body(client, emulator):
        return await client.post("/api/auth.test")

    response = asyncio.run(_with_server(SlackEmulatorConfig(), "503=1:body=json", body))
    assert response.status_code == 503
