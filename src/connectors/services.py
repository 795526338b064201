"""The Hub's persistent services: database, credential store, resolvers, tokens, audit, access.

Each is created on first use from the Hub's settings, so a Hub that only runs stateless
connectors never opens a database, and a missing master key fails only when credentials are
actually needed — with a message saying how to create one. :meth:`HubServices.start` creates the
schema and starts the audit writer; :meth:`HubServices.close` flushes and releases everything.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import weakref
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import connectors.storage.access
import connectors.storage.audit
import connectors.storage.credentials  # noqa: F401  (tables on the shared metadata)
from connectors.access.policy import AccessChange, AccessPolicy, Denial
from connectors.access.tokens import ApiTokens
from connectors.audit.events import AuditEvent, Outcome
from connectors.audit.sinks import SqlAuditSink
from connectors.audit.writer import AuditWriter
from connectors.auth.manager import RefreshEvent, TokenManager
from connectors.auth.stores import CredentialTokenStore, StateLockProvider
from connectors.base import OperationOutcome
from connectors.clock import Clock
from connectors.config.settings import Settings
from connectors.errors import ConnectorError
from connectors.observability.logging import get_logger
from connectors.observability.redaction import redact_text
from connectors.secrets.credential import ChangeEvent
from connectors.secrets.crypto import MasterKeyring
from connectors.secrets.refs import secret_refs
from connectors.secrets.resolvers import ResolverRegistry
from connectors.secrets.secret import Secret
from connectors.secrets.store import CredentialStore
from connectors.secrets.substitute import resolve_values
from connectors.state.base import StateBackend
from connectors.storage.db import Database, default_sqlite_url
from connectors.storage.migrate import ensure_schema

__all__ = ["HubServices"]

_log = get_logger("connectors.hub")


class HubServices:
    """Lazily built services shared by every connector of one Hub."""

    def __init__(self, settings: Settings, *, clock: Clock, state: StateBackend) -> None:
        self.settings = settings
        self.clock = clock
        self.state = state
        self._database: Database | None = None
        self._keyring: MasterKeyring | None = None
        self._credentials: CredentialStore | None = None
        self._resolvers: ResolverRegistry | None = None
        self._tokens: TokenManager | None = None
        self._audits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AuditWriter] = (
            weakref.WeakKeyDictionary()
        )
        # The loop last asked for (weakly: a loop that ends must not be kept) and its writer.
        self._last_audit: tuple[weakref.ref[asyncio.AbstractEventLoop], AuditWriter] | None = None
        self._spools = itertools.count(1)
        self._access: AccessPolicy | None = None
        self._api_tokens: ApiTokens | None = None
        self._started: asyncio.Future[None] | None = None
        self._started_loop: asyncio.AbstractEventLoop | None = None

    # --- construction ---------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        path = Path(self.settings.data_dir)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def database(self) -> Database:
        if self._database is None:
            url = self.settings.database_url or default_sqlite_url(self.data_dir)
            self._database = Database(url)
        return self._database

    @property
    def keyring(self) -> MasterKeyring:
        if self._keyring is None:
            environ: dict[str, str] = {}
            if self.settings.master_keys is not None:
                environ["CONNECTOR_MASTER_KEYS"] = self.settings.master_keys.reveal()
            dev_dir = self.data_dir if self.settings.dev_mode else None
            self._keyring = MasterKeyring.load(environ, dev_dir=dev_dir)
            if dev_mode_key(self.settings):
                _log.warning(
                    "credentials.dev_master_key",
                    path=str(self.data_dir / "master.key"),
                    message="dev mode: the master key is a file next to the database; "
                    "set CONNECTOR_MASTER_KEYS in production",
                )
        return self._keyring

    @property
    def credentials(self) -> CredentialStore:
        if self._credentials is None:
            self._credentials = CredentialStore(
                self.database,
                self.keyring,
                clock=self.clock,
                on_change=self._credential_changed,
            )
        return self._credentials

    @property
    def resolvers(self) -> ResolverRegistry:
        if self._resolvers is None:
            self._resolvers = ResolverRegistry.with_builtins(_LazyStore(self))
        return self._resolvers

    @property
    def tokens(self) -> TokenManager:
        if self._tokens is None:
            self._tokens = TokenManager(
                CredentialTokenStore(lambda: self.credentials),
                StateLockProvider(self.state, clock=self.clock),
                clock=self.clock,
                on_refresh=self._token_refreshed,
            )
        return self._tokens

    @property
    def spool_dir(self) -> Path:
        path = self.data_dir / "audit-spool"
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    @property
    def audit(self) -> AuditWriter:
        """The audit writer of the running event loop (one per loop: its queue and background
        task belong to that loop). Each has its own spool file, replayed if left behind."""
        loop = asyncio.get_running_loop()
        last = self._last_audit
        if last is not None and last[0]() is loop:
            return last[1]  # the common case: every operation asks, nearly always on one loop
        writer = self._audits.get(loop)
        if writer is None:
            writer = self._new_writer(self.spool_dir / f"{os.getpid()}-{next(self._spools)}.jsonl")
            self._audits[loop] = writer
        self._last_audit = (weakref.ref(loop), writer)
        return writer

    def record(self, event: AuditEvent) -> None:
        """Record any audit event on the running loop's writer (non-blocking)."""
        self.audit.record(event)

    def _new_writer(self, spool_path: Path) -> AuditWriter:
        return AuditWriter(
            SqlAuditSink(self.database),
            spool_path=spool_path,
            clock=self.clock,
            redact=redact_text,
            on_sink_error=lambda exc: _log.warning("audit.sink_error", error=type(exc).__name__),
            on_invalid=lambda exc: _log.error(
                "audit.event_invalid", error=type(exc).__name__, message=str(exc)
            ),
        )

    async def replay_orphan_spools(self) -> int:
        """Deliver audit events spooled by processes that died before their sink came back."""
        replayed = 0
        for path in sorted(self.spool_dir.glob("*.jsonl")):
            pid = _spool_pid(path)
            if pid is None or pid == os.getpid() or _alive(pid):
                continue
            if path.stat().st_size == 0:
                path.unlink(missing_ok=True)
                continue
            writer = self._new_writer(path)
            delivered = await writer.close(timeout=30)
            if delivered:
                path.unlink(missing_ok=True)
                replayed += 1
        return replayed

    @property
    def access(self) -> AccessPolicy:
        if self._access is None:
            self._access = AccessPolicy(
                self.database,
                clock=self.clock,
                on_denied=self._denied,
                on_change=self._access_changed,
            )
        return self._access

    @property
    def api_tokens(self) -> ApiTokens:
        if self._api_tokens is None:
            self._api_tokens = ApiTokens(self.database, clock=self.clock)
        return self._api_tokens

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bring the schema to the newest migration (once per Hub and event loop) and replay
        audit spools left by processes that died."""
        loop = asyncio.get_running_loop()
        if self._started is not None and self._started_loop is loop:
            await asyncio.shield(self._started)
            return
        self._started_loop = loop
        self._started = loop.create_future()
        try:
            await ensure_schema(self.database)
            await self.replay_orphan_spools()
        except BaseException as exc:
            self._started.set_exception(exc)
            self._started.exception()  # mark retrieved
            self._started = None
            raise
        self._started.set_result(None)

    async def flush(self) -> None:
        """Write every audit event queued on this loop (to the sink, or the spool file)."""
        writer = self._audits.get(asyncio.get_running_loop())
        if writer is not None:
            await writer.flush(timeout=10)

    async def close(self) -> None:
        """Close this loop's audit writer (draining it), then release database connections."""
        writer = self._audits.pop(asyncio.get_running_loop(), None)
        self._last_audit = None
        if writer is not None:
            await writer.close(timeout=10)
        if self._database is not None:
            await self._database.dispose()

    # --- per-tenant settings --------------------------------------------------------------------

    def settings_resolver(
        self, tenant: str
    ) -> Callable[[Mapping[str, object]], Awaitable[Mapping[str, object]]]:
        """A function resolving ``${...}`` references in connector settings for ``tenant``."""

        async def resolve(settings: Mapping[str, object]) -> Mapping[str, object]:
            if not _has_refs(settings):
                return settings
            resolved = await resolve_values(settings, self.resolvers, tenant=tenant)
            assert isinstance(resolved, dict)
            return resolved

        return resolve

    async def credential_in_use(
        self, tenant: str, settings: Mapping[str, object]
    ) -> tuple[str, int | None] | None:
        """The stored credential a connector's ``settings`` name (its ``oauth_credential``, else
        the first ``${secret:NAME}`` reference) with its version now, ``None`` as the version if
        it cannot be read; ``None`` if they name none. For its operations' audit records."""
        name = settings.get("oauth_credential")
        if not (isinstance(name, str) and name):
            refs = secret_refs(settings)
            if not refs:
                return None
            name = refs[0][0]
        try:
            return name, (await self.credentials.get(tenant, name)).version
        except ConnectorError:  # missing, or no store (no master key): the name still says which
            return name, None

    # --- audit hooks ----------------------------------------------------------------------------

    def record_operation(self, outcome: OperationOutcome) -> None:
        """The ``AuditRecorder`` the operation path calls (non-blocking): the event is built
        with its batch, stamped with this moment."""
        self.audit.record_later(_operation_event, (outcome, self.clock.time()))

    async def _credential_changed(self, change: ChangeEvent) -> None:
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                kind=f"credential.{change.action}",
                tenant=change.tenant,
                actor=change.actor,
                operation=change.action,
                outcome="success",
                credential_name=change.name,
                credential_version=change.version,
            )
        )

    async def _token_refreshed(self, event: RefreshEvent) -> None:
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                kind="token.refresh",
                tenant=event.tenant,
                actor="token-manager",
                operation="refresh",
                outcome="success"
                if event.outcome in ("refreshed", "reused", "conflict")
                else "failure",
                error_code=event.error,
                credential_name=event.credential,
                credential_version=event.version,
                details={"outcome": str(event.outcome)},
            )
        )

    async def _denied(self, denial: Denial) -> None:
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                kind="access.denied",
                tenant=denial.tenant,
                actor=denial.actor,
                operation=str(denial.permission),
                outcome="denied",
                error_code="AccessDenied",
            )
        )

    async def _access_changed(self, change: AccessChange) -> None:
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                kind="access.change",
                tenant=change.tenant,
                actor=change.by or "service",
                operation=change.action,
                target=change.subject,
                outcome="success",
            )
        )


def _operation_event(item: tuple[OperationOutcome, float]) -> AuditEvent:
    outcome, at = item
    return AuditEvent.new(
        at=at,
        kind="operation",
        tenant=outcome.tenant,
        actor=outcome.actor,
        connector=outcome.connector,
        connector_version=outcome.connector_version,
        operation=outcome.operation,
        target=outcome.target,
        outcome=_outcome(outcome.outcome),
        error_code=outcome.error_code,
        status=outcome.status,
        duration_ms=round(outcome.duration * 1000, 3),
        attempts=outcome.attempts,
        request_id=outcome.request_id,
        credential_name=outcome.credential_name,
        credential_version=outcome.credential_version,
    )


def _outcome(value: str) -> Outcome:
    if value == "success":
        return "success"
    if value == "denied":
        return "denied"
    return "failure"


def dev_mode_key(settings: Settings) -> bool:
    """Whether the master key comes from the dev key file (no ``CONNECTOR_MASTER_KEYS``)."""
    return settings.dev_mode and settings.master_keys is None


def _spool_pid(path: Path) -> int | None:
    head = path.stem.split("-", 1)[0]
    return int(head) if head.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _has_refs(value: object) -> bool:
    if isinstance(value, str):
        return "${" in value
    if isinstance(value, Mapping):
        return any(_has_refs(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_refs(v) for v in value)
    return False


class _LazyStore:
    """The ``secret:`` resolver's view of the credential store, built only when used."""

    def __init__(self, services: HubServices) -> None:
        self._services = services

    async def get_field(self, tenant: str, name: str, field_name: str = "value") -> Secret:
        return await self._services.credentials.get_field(tenant, name, field_name)
