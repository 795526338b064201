"""Serving the emulator on a loopback port with uvicorn (``connectors emulate salesforce``)."""

from __future__ import annotations

import gc

import uvicorn

from connectors.clock import system_clock

from .app import SalesforceEmulator, create_salesforce_app
from .config import SalesforceEmulatorConfig

__all__ = ["build_server", "run_salesforce_emulator"]


def build_server(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    config: SalesforceEmulatorConfig | None = None,
    log_level: str = "warning",
    freeze_heap: bool = False,
) -> tuple[SalesforceEmulator, uvicorn.Server]:
    """An emulator and a uvicorn server for it, not yet started (``await server.serve()``).

    ``instance_url`` defaults to the address served, so clients follow it back here.
    ``freeze_heap`` is for a process that exists to serve the emulator: everything imported and
    built so far lives until exit, so it is moved out of the garbage collector's reach
    (``gc.freeze``). Otherwise each full collection walks those ~120,000 objects again, every
    few pages of a large query: about a tenth of the emulator's time paging 200,000 records.
    """
    base = config or SalesforceEmulatorConfig(instance_url=f"http://{host}:{port}")
    emulator = create_salesforce_app(base, clock=system_clock)
    server = uvicorn.Server(
        uvicorn.Config(emulator.app, host=host, port=port, log_level=log_level, lifespan="off")
    )
    if freeze_heap:
        gc.collect()
        gc.freeze()
    return emulator, server


def run_salesforce_emulator(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    config: SalesforceEmulatorConfig | None = None,
    log_level: str = "info",
) -> None:
    """Serve an emulated org until interrupted (blocking); the process is the emulator's."""
    emulator, server = build_server(
        host, port, config=config, log_level=log_level, freeze_heap=True
    )
    try:
        server.run()
    finally:
        emulator.close()
