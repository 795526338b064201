"""Server commands: ``connectors serve``, ``connectors demo`` and ``connectors emulate``.

The lead mounts them on the root app with :func:`register`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
import uvicorn
import yaml

from connectors.clock import system_clock
from connectors.config.settings import Settings
from connectors.errors import ConnectorError, DefinitionError
from connectors.hub import Hub
from connectors.secrets.secret import Secret

__all__ = ["register"]

#: Environment variable holding the server's HMAC secret (sessions, CSRF, OAuth state).
SECRET_ENV = "CONNECTOR_SERVER_SECRET"  # noqa: S105 - a variable name


class Provider(StrEnum):
    salesforce = "salesforce"
    slack = "slack"


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    config: Annotated[
        Path | None, typer.Option(help="connectors.yaml (default: $CONNECTOR_CONFIG).")
    ] = None,
    metrics_host: Annotated[
        str, typer.Option(help="Address of the separate, unauthenticated /metrics listener.")
    ] = "127.0.0.1",
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Serve /metrics (all tenants, no token) on this port instead."),
    ] = None,
    probe_interval: Annotated[
        float, typer.Option(help="Seconds between health probes (0: off).")
    ] = 30.0,
    public_url: Annotated[
        str | None, typer.Option(help="External base URL (OAuth redirect URI).")
    ] = None,
    secure_cookies: Annotated[
        bool, typer.Option(help="Mark cookies Secure (serve behind HTTPS).")
    ] = False,
    tenant: Annotated[
        list[str] | None, typer.Option(help="Tenant to probe from the start (repeatable).")
    ] = None,
) -> None:
    """Serve the health API, metrics, OAuth connect, inbound webhooks and the dashboard."""
    from connectors.server.api_metrics import metrics_app
    from connectors.server.app import create_app
    from connectors.server.settings import ServerSettings

    try:
        hub = Hub.from_file(config) if config is not None else Hub.default()
        configured = hub.settings.server_secret
        secret = configured.reveal() if configured is not None else None
        settings = ServerSettings(
            probe_interval=probe_interval or None,
            probe_tenants=tuple(tenant or ()),
            public_url=public_url or f"http://{host}:{port}",
            secure_cookies=secure_cookies,
            metrics_auth="none" if metrics_port is not None else "token",
        )
        if secret:
            settings = dataclasses.replace(settings, secret=Secret(secret, name=SECRET_ENV))
    except ConnectorError as exc:
        raise _fail(str(exc)) from None
    app = create_app(hub, settings=settings)
    servers = [
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="on"))
    ]
    if metrics_port is not None:
        servers.append(
            uvicorn.Server(
                uvicorn.Config(
                    metrics_app(hub),
                    host=metrics_host,
                    port=metrics_port,
                    log_level="warning",
                    lifespan="off",
                )
            )
        )
    if not secret:
        typer.echo(f"note: {SECRET_ENV} is not set: sessions end when the server restarts")

    async def main() -> None:
        try:
            await asyncio.gather(*(s.serve() for s in servers))
        finally:
            await hub.aclose()

    asyncio.run(main())


def demo(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    data_dir: Annotated[
        Path | None, typer.Option(help="Where the demo's SQLite and key live.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (default: run until Ctrl-C).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between traffic rounds.")] = 2.0,
    incident_every: Annotated[
        float, typer.Option(help="Seconds between Salesforce incidents (0: none).")
    ] = 90.0,
) -> None:
    """Run the dashboard with emulated Salesforce and Slack, two tenants and live traffic."""
    from connectors.server.demo import run_demo

    directory = data_dir if data_dir is not None else Settings.load().data_dir
    asyncio.run(
        run_demo(
            host=host,
            port=port,
            data_dir=directory,
            duration=duration,
            interval=interval,
            incident_every=incident_every or None,
            echo=lambda line: typer.echo(line),
        )
    )


def _seed_data(path: Path | None) -> dict[str, object]:
    if path is None:
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise DefinitionError(f"cannot read seed data: {exc.strerror}", file=str(path)) from exc
    except yaml.YAMLError as exc:
        raise DefinitionError(f"invalid YAML or JSON: {exc}", file=str(path)) from exc
    if not isinstance(data, dict):
        raise DefinitionError("seed data must be a mapping of settings", file=str(path), line=1)
    return {str(k): v for k, v in data.items()}


def emulate(
    provider: Annotated[Provider, typer.Argument(help="Which emulator to run.")],
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (or --host).")] = 8787,
    host: Annotated[str, typer.Option(help="Address to bind (loopback by default).")] = "127.0.0.1",
    seed_data: Annotated[
        Path | None,
        typer.Option(
            help="YAML/JSON: SeedSpec fields for Salesforce (contacts, leads...), "
            "SlackEmulatorConfig fields for Slack (user_count, messages_per_channel...)."
        ),
    ] = None,
    faults: Annotated[
        str | None, typer.Option(help="Fault spec, e.g. '5xx=0.1,429=0.05:retry_after=2'.")
    ] = None,
    time_scale: Annotated[
        float | None, typer.Option(help="Slack: speed up rate-limit windows by this factor.")
    ] = None,
) -> None:
    """Run a Salesforce or Slack emulator on a loopback port until interrupted."""
    from connectors.testing.faults import FaultInjector, parse_fault_spec

    try:
        values = _seed_data(seed_data)
        if faults:
            parse_fault_spec(faults)  # fail before binding the port
        if provider is Provider.slack:
            from connectors.testing.slack import SlackEmulatorConfig, run_slack_emulator

            if time_scale is not None:
                values["time_scale"] = time_scale
            try:
                config = SlackEmulatorConfig(**values)  # type: ignore[arg-type]
            except TypeError as exc:
                raise DefinitionError(f"unknown Slack emulator setting: {exc}") from None
            typer.echo(
                f"Slack emulator on http://{host}:{port}/api/ (bot token {config.bot_token})"
            )
            run_slack_emulator(host, port, config, faults=faults)
            return
        from connectors.testing.salesforce import (
            SalesforceEmulatorConfig,
            SeedSpec,
            create_salesforce_app,
        )

        if time_scale is not None:
            raise _fail("--time-scale applies to the Slack emulator only")
        try:
            seed = SeedSpec(**values)  # type: ignore[arg-type]
        except TypeError as exc:
            raise DefinitionError(f"unknown Salesforce seed setting: {exc}") from None
        url = f"http://{host}:{port}"
        emulator = create_salesforce_app(
            SalesforceEmulatorConfig(instance_url=url, login_url=url, seed=seed), clock=system_clock
        )
        app = FaultInjector(emulator.app, faults, clock=system_clock) if faults else emulator.app
        typer.echo(f"Salesforce emulator on {url} (token endpoint {url}/services/oauth2/token)")
        typer.echo(json.dumps({"consumer_key": emulator.config.connected_apps[0].consumer_key}))
        try:
            uvicorn.Server(
                uvicorn.Config(app, host=host, port=port, log_level="info", lifespan="off")
            ).run()
        finally:
            emulator.close()
    except ConnectorError as exc:
        raise _fail(str(exc)) from None


def register(app: typer.Typer) -> None:
    """Add ``serve``, ``demo`` and ``emulate`` to the root command."""
    app.command("serve")(serve)
    app.command("demo")(demo)
    app.command("emulate")(emulate)
