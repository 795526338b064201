"""Serving the emulator on a loopback port with uvicorn (``connectors emulate salesforce``)."""

from __future__ import annotations

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
) -> tuple[SalesforceEmulator, uvicorn.Server]:
    """An emulator and a uvicorn server for it, not yet started (``await server.serve()``).

    ``instance_url`` defaults to the address served, so clients follow it back here.
    """
    base = config or SalesforceEmulatorConfig(instance_url=f"http://{host}:{port}")
    emulator = create_salesforce_app(base, clock=system_clock)
    server = uvicorn.Server(
        uvicorn.Config(emulator.app, host=host, port=port, log_level=log_level, lifespan="off")
    )
    return emulator, server


def run_salesforce_emulator(
    host: str = "127.0.0.1",
    port: int = 8787,
    *,
    config: SalesforceEmulatorConfig | None = None,
    log_level: str = "info",
) -> None:
    """Serve an emulated org until interrupted (blocking)."""
    emulator, server = build_server(host, port, config=config, log_level=log_level)
    try:
        server.run()
    finally:
        emulator.close()
