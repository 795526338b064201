"""``connectors demo``: the server with live data, in one process, in seconds.

What it sets up:

- a Hub on the embedded defaults (SQLite under the data directory, in-memory state, the dev-mode
  master key file), with the Salesforce and Slack adapters over the in-process emulators
  (``httpx2.ASGITransport``), each wrapped in :class:`~connectors.testing.faults.FaultInjector`;
- two tenants, ``acme-corp`` and ``globex``, each with its own credentials in the encrypted store
  (the Salesforce connected app's client secret, a Slack bot token), role grants for a workflow
  actor, and a fresh admin API token (earlier demo tokens are revoked);
- traffic: every ``interval`` seconds each tenant calls the adapters directly (query contacts,
  create a lead, post to ``#alerts``), and every ``workflow_every`` ticks it runs the real
  ``templates/workflows/lead_followup.yaml`` through the workflow runner: new leads are
  announced in Slack, their owners get an email (to an aiosmtpd sink the traffic loop starts on
  a free loopback port) and the CRM sync webhook goes to a small loopback receiver (endpoint
  allowlisted for 127.0.0.1/32, delivered at once with ``deliver_now``); a background level of
  faults (5xx, 429 with ``Retry-After``, latency) and, every ``incident_every`` seconds, an
  incident where Salesforce fails hard for ``incident_length`` seconds, so circuits open and
  recover on the dashboard.

The sinks live on the traffic loop (not in :func:`build_demo`), because callers build the demo
in one event loop and serve it in another. Without aiosmtpd (a development dependency) or the
template file (a source checkout), the workflow part is skipped with a warning.

:func:`build_demo` returns the pieces (the browser tests use it with their own fault plans);
:func:`run_demo` serves them with uvicorn until interrupted or ``duration`` passes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx2
import uvicorn

from connectors.base import Connector
from connectors.clock import Clock, system_clock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.context import CallContext
from connectors.errors import ConnectorError
from connectors.hub import Hub
from connectors.lifecycle import State
from connectors.observability.logging import get_logger
from connectors.registry import AdapterRegistry
from connectors.server.app import create_app
from connectors.server.demo_sinks import HookReceiver, MailSink
from connectors.server.settings import ServerSettings
from connectors.testing.faults import FaultInjector
from connectors.testing.salesforce import (
    SalesforceEmulator,
    SalesforceEmulatorConfig,
    SeedSpec,
    create_salesforce_app,
)
from connectors.testing.salesforce.faults import salesforce_faults
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig
from connectors.workflows import Workflow, WorkflowRunner, load_workflow

__all__ = [
    "BASE_FAULTS",
    "DEMO_TENANTS",
    "INCIDENT_FAULTS",
    "DemoEnvironment",
    "Traffic",
    "build_demo",
    "run_demo",
]

DEMO_TENANTS: Final = ("acme-corp", "globex")
SF_HOST: Final = "http://salesforce.emulator"
SLACK_BASE: Final = "http://slack.emulator/api/"
#: Background faults: a few server errors and 429s, and realistic latency.
BASE_FAULTS: Final = "5xx=0.04,429=0.02:retry_after=1,latency=15ms..90ms"
SLACK_FAULTS: Final = "5xx=0.03,latency=10ms..60ms"
#: An incident: the provider fails almost every call.
INCIDENT_FAULTS: Final = "503=0.95,latency=50ms..200ms"
_SF_PATHS: Final = ":paths=/services/data/*"
#: The workflow the traffic runs (in a source checkout: ``<repo>/templates/workflows``).
WORKFLOW_FILE: Final = (
    Path(__file__).resolve().parents[3] / "templates" / "workflows" / "lead_followup.yaml"
)
#: The demo's CRM sync signing secret (Standard Webhooks form; a fixed demo value).
SYNC_SECRET: Final = "whsec_" + base64.b64encode(b"connectors-demo-crm-sync-key").decode()

_log = get_logger("connectors.server.demo")


def _definitions(threshold: int, reset_ms: int) -> dict[str, ConnectorDefinition]:
    resilience = {
        "retry": {"max_attempts": 2, "base_delay_ms": 50, "max_delay_ms": 500},
        "circuit_breaker": {"threshold": threshold, "reset_ms": reset_ms},
        "timeout_ms": 5000,
        "deadline_ms": 15000,
    }
    return {
        "salesforce": ConnectorDefinition.model_validate(
            {
                "type": "salesforce",
                "settings": {
                    "auth": "client_credentials",
                    "client_id": "3MVG9emulatedConsumerKey",
                    "client_secret": "${secret:salesforce_client_secret}",
                    "login_url": SF_HOST,
                    "api_version": "62.0",
                },
                "resilience": resilience,
            }
        ),
        "slack": ConnectorDefinition.model_validate(
            {
                "type": "slack",
                "settings": {
                    "base_url": SLACK_BASE,
                    "token": "${secret:slack_bot_token}",
                    "post_message_burst": 3,
                },
                "resilience": resilience,
            }
        ),
    }


@dataclass
class DemoEnvironment:
    """The demo's Hub, emulators, fault injectors, tokens and server settings."""

    hub: Hub
    salesforce: SalesforceEmulator
    slack: SlackEmulator
    sf_faults: FaultInjector
    slack_faults: FaultInjector
    settings: ServerSettings
    admin_tokens: dict[str, str] = field(default_factory=dict)
    actors: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.salesforce.close()


async def build_demo(
    data_dir: Path,
    *,
    public_url: str = "http://127.0.0.1:8000",
    sf_faults: str = BASE_FAULTS + _SF_PATHS,
    slack_faults: str = SLACK_FAULTS,
    probe_interval: float | None = 10.0,
    breaker_threshold: int = 5,
    breaker_reset_ms: int = 15_000,
    clock: Clock = system_clock,
    settings: Settings | None = None,
) -> DemoEnvironment:
    """Emulators, a Hub over them, two seeded tenants; nothing served yet."""
    from connectors.adapters.email import EmailConnector
    from connectors.adapters.salesforce import SalesforceConnector
    from connectors.adapters.slack import SlackConnector
    from connectors.adapters.webhook import WebhookConnector

    salesforce = create_salesforce_app(
        SalesforceEmulatorConfig(
            instance_url=SF_HOST,
            login_url=SF_HOST,
            seed=SeedSpec(accounts=40, contacts=200, leads=60),
        ),
        clock=clock,
    )
    slack = SlackEmulator(
        SlackEmulatorConfig(time_scale=5.0, integer_retry_after=False), clock=clock
    )
    sf_injector = salesforce_faults(salesforce.app, sf_faults, seed=7, clock=clock)
    slack_injector = FaultInjector(slack.app, slack_faults, seed=11, clock=clock)
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(SalesforceConnector)
    registry.register(SlackConnector)
    registry.register(EmailConnector)
    registry.register(WebhookConnector)  # before hub.start(): its tables are created there
    hub = Hub(
        settings or Settings.load(None, data_dir=data_dir, dev_mode=True),
        definitions=_definitions(breaker_threshold, breaker_reset_ms),
        registry=registry,
        transports={
            "salesforce": httpx2.ASGITransport(app=sf_injector),
            "slack": httpx2.ASGITransport(app=slack_injector),
        },
        clock=clock,
    )
    server_settings = ServerSettings(
        connectors=("salesforce", "slack"),
        probe_tenants=DEMO_TENANTS,
        probe_interval=probe_interval,
        public_url=public_url,
    )
    env = DemoEnvironment(hub, salesforce, slack, sf_injector, slack_injector, server_settings)
    await hub.start()
    await _seed(env)
    return env


async def _seed(env: DemoEnvironment) -> None:
    hub = env.hub
    services = hub.services
    sf_secret = env.salesforce.config.connected_apps[0].consumer_secret
    for tenant in DEMO_TENANTS:
        bot = env.slack.issue_token()
        await services.credentials.put(
            tenant,
            "salesforce_client_secret",
            {"value": sf_secret},
            metadata={"kind": "oauth_client_secret", "connector": "salesforce"},
            actor="demo",
        )
        await services.credentials.put(
            tenant,
            "crm_sync_key",
            {"value": SYNC_SECRET},
            metadata={"kind": "webhook_secret", "connector": "webhook"},
            actor="demo",
        )
        await services.credentials.put(
            tenant,
            "slack_bot_token",
            {"value": bot.access_token},
            metadata={"kind": "bot_token", "connector": "slack"},
            actor="demo",
        )
        actor = f"lead-followup@{tenant}"
        env.actors[tenant] = actor
        await services.access.grant(actor, tenant, "editor", by="demo")
        await services.access.grant(f"admin@{tenant}", tenant, "admin", by="demo")
        for old in await services.api_tokens.list(tenant, include_revoked=False):
            if old.name == "demo-admin":
                await services.api_tokens.revoke(old.id, tenant=tenant)
        secret, _info = await services.api_tokens.create(
            tenant, "admin", name="demo-admin", created_by="demo"
        )
        env.admin_tokens[tenant] = secret.reveal()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Traffic:
    """The periodic lead follow-up per tenant, with a fault schedule.

    Every ``workflow_every`` ticks (``None``: never) each tenant also runs the lead follow-up
    workflow (``workflow``, default :data:`WORKFLOW_FILE`) through :class:`WorkflowRunner`.
    """

    def __init__(
        self,
        env: DemoEnvironment,
        *,
        interval: float = 2.0,
        incident_every: float | None = 90.0,
        incident_length: float = 25.0,
        base_faults: str = BASE_FAULTS + _SF_PATHS,
        on_tick: Callable[[int], None] | None = None,
        workflow_every: int | None = 5,
        workflow: Path = WORKFLOW_FILE,
    ) -> None:
        self.env = env
        self.interval = interval
        self.incident_every = incident_every
        self.incident_length = incident_length
        self.base_faults = base_faults
        self.on_tick = on_tick
        self.calls = 0
        self.failures = 0
        self._open: dict[tuple[str, str], Connector] = {}
        self._counter = itertools.count(1)
        self.workflow_every = workflow_every
        self.workflow_path = workflow
        self.workflow_runs = 0
        self.workflow_failures = 0
        self.mail = MailSink()
        self.hooks = HookReceiver()
        self._workflow: Workflow | None = None
        self._since: dict[str, str] = {}
        self._endpoints: dict[str, str] = {}

    async def _conn(self, tenant: str, name: str) -> Connector:
        conn = self._open.get((tenant, name))
        if conn is not None and conn.state is State.CONNECTED:
            return conn
        conn = self.env.hub.connector(name, tenant_id=tenant, actor=self.env.actors[tenant])
        self._open[(tenant, name)] = conn
        await conn.connect()
        return conn

    async def _drop(self, tenant: str, name: str) -> None:
        conn = self._open.pop((tenant, name), None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()

    async def lead_followup(self, tenant: str, n: int) -> None:
        """Query contacts, create a lead, post it to #alerts (one failure ends the run)."""
        try:
            sf = await self._conn(tenant, "salesforce")
            await sf.query("SELECT Id, Name, Email FROM Contact LIMIT 5")  # type: ignore[attr-defined]
            self.calls += 1
            if n % 2 == 0:
                lead = await sf.create(  # type: ignore[attr-defined]
                    "Lead",
                    {"FirstName": "Demo", "LastName": f"Lead {n}", "Company": f"{tenant} prospect"},
                )
                self.calls += 1
                slack = await self._conn(tenant, "slack")
                await slack.post_message(  # type: ignore[attr-defined]
                    "#alerts", f"New lead for {tenant}: {getattr(lead, 'id', '?')}"
                )
                self.calls += 1
        except ConnectorError:
            self.failures += 1
            for name in ("salesforce", "slack"):
                conn = self._open.get((tenant, name))
                if conn is not None and conn.state is not State.CONNECTED:
                    await self._drop(tenant, name)

    def _faults_for(self, elapsed: float) -> str:
        if self.incident_every is None:
            return self.base_faults
        phase = elapsed % self.incident_every
        start = self.incident_every - self.incident_length
        return INCIDENT_FAULTS + _SF_PATHS if phase >= start else self.base_faults

    async def run(self) -> None:
        """Forever: one follow-up per tenant per interval; faults follow the schedule."""
        clock = self.env.hub.clock
        started = clock.monotonic()
        current = ""
        try:
            await self.start_workflow()
            while True:
                wanted = self._faults_for(clock.monotonic() - started)
                if wanted != current:
                    self.env.sf_faults.set(wanted)
                    current = wanted
                n = next(self._counter)
                await asyncio.gather(*(self._tick(t, n) for t in DEMO_TENANTS))
                if self.on_tick is not None:
                    self.on_tick(n)
                await clock.sleep(self.interval)
        finally:
            for key in list(self._open):
                await self._drop(*key)
            await self.mail.stop()
            await self.hooks.stop()

    async def _tick(self, tenant: str, n: int) -> None:
        # The workflow first: ``since`` has whole seconds, so a lead created just before a run
        # (in the same second) would be announced again by the next run.
        if self._workflow is not None and self.workflow_every and n % self.workflow_every == 0:
            await self.run_workflow(tenant)
        await self.lead_followup(tenant, n)

    async def start_workflow(self) -> bool:
        """Start the sinks, add the ``email`` and ``webhook`` definitions and each tenant's
        sync endpoint; ``False`` (and a warning) if the workflow cannot run here."""
        if self.workflow_every is None:
            return False
        try:
            self._workflow = load_workflow(self.workflow_path)
            smtp_port = await self.mail.start()
        except (ImportError, ConnectorError, OSError) as exc:
            _log.warning("demo.workflow_disabled", reason=f"{type(exc).__name__}: {exc}")
            self._workflow = None
            return False
        hook_port = await self.hooks.start()
        hub = self.env.hub
        hub.definitions["email"] = ConnectorDefinition.model_validate(
            {
                "type": "email",
                "settings": {
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_port,
                    "smtp_security": "none",
                    "smtp_auth": "none",
                    "default_from": "Demo sales bot <sales-bot@demo.localhost>",
                    "timeout": 5,
                },
            }
        )
        hub.definitions["webhook"] = ConnectorDefinition.model_validate(
            {"type": "webhook", "settings": {"retry_schedule": [0, 2, 10], "timeout": 5}}
        )
        now = _iso(hub.clock.time())
        for tenant in DEMO_TENANTS:
            self._since[tenant] = now
            self._endpoints[tenant] = await self._endpoint(tenant, hook_port)
        return True

    async def _endpoint(self, tenant: str, port: int) -> str:
        """This run's sync endpoint (the receiver's port changes per run; older ones are
        disabled, so a data directory reused across runs does not pile up failing targets)."""
        wanted = f"crm-sync-{tenant}-{port}"
        async with self.env.hub.open("webhook", tenant_id=tenant, actor=f"admin@{tenant}") as conn:
            for old in await conn.endpoints():  # type: ignore[attr-defined]
                if old.id.startswith(f"crm-sync-{tenant}-") and old.id != wanted and old.enabled:
                    await conn.set_endpoint_enabled(old.id, False)  # type: ignore[attr-defined]
            await conn.create_endpoint(  # type: ignore[attr-defined]
                f"http://127.0.0.1:{port}/crm-sync",
                ["${secret:crm_sync_key}"],
                allow_nets=["127.0.0.1/32"],
                endpoint_id=wanted,
            )
        return wanted

    async def run_workflow(self, tenant: str) -> None:
        """One run of the lead follow-up workflow for ``tenant`` (leads since the last run),
        then one delivery attempt of its sync webhook."""
        assert self._workflow is not None
        hub = self.env.hub
        since, self._since[tenant] = self._since[tenant], _iso(hub.clock.time())
        inputs = {"since": since, "channel": "#alerts", "limit": 10}
        inputs["sync_endpoint"] = self._endpoints[tenant]
        ctx = CallContext(tenant=tenant, actor=self.env.actors[tenant])
        try:
            result = await WorkflowRunner(hub).run(self._workflow, ctx, inputs)
            self.workflow_runs += 1
            if result.status != "succeeded":
                self.workflow_failures += 1
            sync = next(step for step in result.steps if step.id == "sync")
            if sync.status == "succeeded" and isinstance(sync.output, str):
                hooks = await self._conn(tenant, "webhook")
                await hooks.deliver_now(sync.output)  # type: ignore[attr-defined]
        except ConnectorError as exc:
            self.workflow_failures += 1
            _log.warning("demo.workflow_failed", tenant=tenant, error=exc.code)


async def run_demo(
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path = Path(".connectors"),
    duration: float | None = None,
    interval: float = 2.0,
    incident_every: float | None = 90.0,
    echo: Callable[[str], None] = print,
) -> None:
    """Build the demo, print how to log in, serve it until interrupted or ``duration`` ends."""
    public = f"http://{host}:{port}"
    env = await build_demo(data_dir, public_url=public)
    app = create_app(env.hub, settings=env.settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    traffic = Traffic(env, interval=interval, incident_every=incident_every)
    echo(f"Connector Framework demo: {public}/")
    for tenant, token in env.admin_tokens.items():
        echo(f"  admin token for {tenant}: {token}")
    echo("Log in with a token above. Ctrl-C stops the demo.")
    traffic_task = asyncio.get_running_loop().create_task(traffic.run(), name="demo-traffic")

    async def stop_later() -> None:
        if duration is not None:
            await env.hub.clock.sleep(duration)
            server.should_exit = True

    stopper = asyncio.get_running_loop().create_task(stop_later())
    try:
        await server.serve()
    finally:
        stopper.cancel()
        traffic_task.cancel()
        for task in (stopper, traffic_task):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await env.hub.aclose()
        env.close()
