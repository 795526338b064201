"""Serve the Slack emulator over HTTP with uvicorn (the ``connectors emulate slack`` command)."""

from __future__ import annotations

import uvicorn

from connectors.clock import Clock
from connectors.testing.faults import FaultInjector, parse_fault_spec
from connectors.testing.slack.config import SlackEmulatorConfig
from connectors.testing.slack.emulator import SlackEmulator

__all__ = ["build_server", "run_slack_emulator"]


def build_server(
    host: str = "127.0.0.1",
    port: int = 8030,
    config: SlackEmulatorConfig | None = None,
    *,
    clock: Clock | None = None,
    faults: str | None = None,
    fault_seed: int = 0,
    log_level: str = "warning",
) -> tuple[uvicorn.Server, SlackEmulator]:
    """A configured (not yet started) uvicorn server and the emulator it serves.

    ``faults`` is a fault spec (see :mod:`connectors.testing.faults`); its ``expire_token_at``
    expires the emulator's rotating tokens.
    """
    emulator = SlackEmulator(config, clock=clock)
    app = emulator.app
    if faults:
        app = FaultInjector(  # type: ignore[assignment]
            emulator.app,
            parse_fault_spec(faults),
            seed=fault_seed,
            clock=emulator.clock,
            on_expire_tokens=emulator.expire_tokens,
        )
    server_config = uvicorn.Config(app, host=host, port=port, log_level=log_level, lifespan="off")
    return uvicorn.Server(server_config), emulator


def run_slack_emulator(
    host: str = "127.0.0.1",
    port: int = 8030,
    config: SlackEmulatorConfig | None = None,
    *,
    faults: str | None = None,
    fault_seed: int = 0,
    log_level: str = "info",
) -> None:
    """Serve the emulator until interrupted (blocking)."""
    server, _ = build_server(
        host, port, config, faults=faults, fault_seed=fault_seed, log_level=log_level
    )
    server.run()
