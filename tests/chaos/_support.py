"""Pieces shared by the chaos scenarios: an attempt-timeout enforcing transport for in-process
emulators, the ledger of surfaced errors, the audit cross-check and a flaky loopback receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2

from connectors.audit.events import AuditEvent
from connectors.audit.query import AuditQuery, list_events
from connectors.clock import Clock
from connectors.config.definition import ResilienceOverrides
from connectors.errors import AmbiguousOutcome, ConnectorError, Timeout
from connectors.hub import Hub

#: Retries generous enough that an idempotent call survives 30% faults within its deadline; the
#: breaker is out of the way (its behaviour under faults has its own tests) so that one unlucky
#: run of failures does not turn the rest of the scenario into fast failures.
CHAOS_RESILIENCE = {
    "retry": {"max_attempts": 10, "base_delay_ms": 100, "max_delay_ms": 2000},
    "circuit_breaker": {"threshold": 10_000, "reset_ms": 1000},
    "timeout_ms": 5000,
    "deadline_ms": 300_000,
}
#: 30% of requests faulted: 5xx, dropped before and after the app, latency beyond the 5 s
#: attempt timeout, and 429 storms (three in a row, ``Retry-After: 1``).
CHAOS_FAULTS = (
    "5xx=0.10:body=json,drop=0.05,drop_after=0.05,429=0.04:retry_after=1:storm=3,latency=6s:p=0.06"
)


def chaos_overrides() -> ResilienceOverrides:
    return ResilienceOverrides.model_validate(CHAOS_RESILIENCE)


class AttemptTimeoutTransport(httpx2.AsyncBaseTransport):
    """Makes an in-process transport honour the attempt timeout on an injected clock.

    ``httpx2.ASGITransport`` ignores timeouts. This wrapper measures each exchange on the clock
    (the fault injector's latency is a clock sleep) and, when it took longer than the request's
    read timeout, raises ``httpx2.ReadTimeout`` the way a socket read would: after the server
    may have processed the request, which is exactly the ambiguous case.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, clock: Clock) -> None:
        self.inner = inner
        self.clock = clock
        self.timeouts = 0

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        started = self.clock.monotonic()
        response = await self.inner.handle_async_request(request)
        limits = request.extensions.get("timeout") or {}
        read = limits.get("read") if isinstance(limits, dict) else None
        if read is not None and self.clock.monotonic() - started > read:
            await response.aclose()
            self.timeouts += 1
            raise httpx2.ReadTimeout("read timed out (chaos)", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Ledger:
    """Outcomes of the scenario's calls: successes by key, surfaced errors by key."""

    succeeded: dict[str, object] = field(default_factory=dict)
    failed: dict[str, BaseException] = field(default_factory=dict)

    async def call(self, key: str, awaitable: object) -> object | None:
        try:
            result = await awaitable  # type: ignore[misc]
        except Exception as exc:  # every failure is recorded; the test checks its type
            self.failed[key] = exc
            return None
        self.succeeded[key] = result
        return result

    def untyped(self) -> dict[str, BaseException]:
        return {k: e for k, e in self.failed.items() if not isinstance(e, ConnectorError)}


def maybe_processed(error: BaseException) -> bool:
    """Whether the provider may have acted on the request (the answer was lost)."""
    return isinstance(error, AmbiguousOutcome) or (
        isinstance(error, Timeout) and error.request_sent
    )


async def audit_events(hub: Hub, tenant: str) -> list[AuditEvent]:
    """Every operation audit event of ``tenant``, read back through ``list_events``.

    Flushed without a timeout: ``HubServices.flush`` waits at most 10 s *on the Hub's clock*,
    and a ``FakeClock`` jumps those 10 s while the SQLite thread is still writing, leaving the
    events in the spool file (delivered later, not lost) instead of the table.
    """
    assert await hub.services.audit.flush(timeout=None)
    events: list[AuditEvent] = []
    cursor: str | None = None
    while True:
        page = await list_events(
            hub.services.database,
            AuditQuery(tenant=tenant, kind="operation", limit=1000, cursor=cursor),
        )
        events.extend(c.event for c in page.events)
        cursor = page.next_cursor
        if cursor is None:
            return events


def assert_failures_audited(ledger: Ledger, events: list[AuditEvent]) -> None:
    """Every surfaced error is typed, carries a request id, and that request id has a failure
    audit record with the same error code."""
    assert ledger.untyped() == {}, f"untyped failures: {ledger.untyped()!r}"
    by_request = {e.request_id: e for e in events if e.request_id}
    for key, error in ledger.failed.items():
        assert isinstance(error, ConnectorError)
        assert error.request_id, f"{key}: {error!r} has no request id"
        event = by_request.get(error.request_id)
        assert event is not None, (
            f"{key}: no audit record for request {error.request_id}: {error!r}; "
            f"{len(events)} events"
        )
        assert event.outcome == "failure", (key, event)
        assert event.error_code == error.code, (key, event.error_code, error.code)


# --- a flaky loopback webhook receiver -----------------------------------------------------------


@dataclass
class FlakyReceiver:
    """An HTTP/1.1 server on 127.0.0.1 that fails ``fail_rate`` of requests (deterministically:
    a hash of the request number): half answer 503, half drop the connection unanswered."""

    fail_rate: float = 0.3
    seed: int = 0
    requests: int = 0
    failures: int = 0
    #: ``webhook-id`` → how many times it was answered 2xx (the receiver's dedupe view).
    delivered: dict[str, int] = field(default_factory=dict)
    port: int = 0

    def _fails(self) -> str | None:
        digest = hashlib.blake2b(f"{self.seed}:{self.requests}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if u < self.fail_rate / 2:
            return "503"
        if u < self.fail_rate:
            return "drop"
        return None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests += 1
                verdict = self._fails()
                if verdict == "drop":
                    self.failures += 1
                    writer.close()
                    return
                if verdict == "503":
                    self.failures += 1
                    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                else:
                    msg = headers.get("webhook-id", "")
                    self.delivered[msg] = self.delivered.get(msg, 0) + 1
                    writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FlakyReceiver]:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        try:
            yield self
        finally:
            server.close()
            await server.wait_closed()
