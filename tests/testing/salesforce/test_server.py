"""The emulator served by uvicorn on a loopback port."""

from __future__ import annotations

import asyncio
import gc
import socket

import httpx2

from connectors.testing.salesforce import build_server

from ._support import run


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_uvicorn_serves_the_emulator_on_loopback():
    port = _free_port()
    emulator, server = build_server("127.0.0.1", port)

    async def main():
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(200):
                if server.started:
                    break
                await asyncio.sleep(0.02)
            async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
                versions = await http.get("/services/data")
                unauthorised = await http.get("/services/data/v62.0/limits")
            return versions, unauthorised
        finally:
            server.should_exit = True
            await task

    versions, unauthorised = run(main)
    assert versions.status_code == 200
    assert versions.json()[-1]["version"] == "62.0"
    assert unauthorised.status_code == 401
    assert emulator.config.instance_url == f"http://127.0.0.1:{port}"
    emulator.close()


def test_a_server_process_can_take_its_startup_heap_out_of_the_collector_s_reach():
    assert gc.get_freeze_count() == 0
    emulator, _ = build_server("127.0.0.1", _free_port(), freeze_heap=True)
    try:
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        emulator.close()
    emulator, _ = build_server("127.0.0.1", _free_port())
    assert gc.get_freeze_count() == 0
    emulator.close()
