"""The audit writer: a cheap ``record()`` on the hot path, batched writes behind it, no loss.

::

    record(event) ──► memory queue ──(batches)──► sink
                         │ full, or the sink fails
                         ▼
                    spool file (JSONL, fsync'd) ──(replay in order, with backoff)──► sink

``record`` appends to a deque and returns (well under a microsecond or two);
``record_later(build, arg)`` queues an event that ``build(arg)`` makes when its batch is written,
so the hot path pays for a tuple, not for an event (built one by one in a tight loop, events cost
a third of what they do built one per call between the caller's other work). A background task
waits up to ``flush_interval`` for a batch to fill, then writes batches to the sink. When the
queue is full, or the sink raises, events go to the spool file instead — nothing is dropped —
and every later event follows them there until the spool has been replayed, so each tenant's
order is kept. A spool left by a crash is replayed first when the next writer starts.

Delivery is at least once; :class:`~connectors.audit.sinks.SqlAuditSink` skips ids it already
holds, so a replayed batch is stored once. Events still in memory when the process is killed
(at most ``flush_interval`` old) are lost; :meth:`AuditWriter.flush` and
:meth:`AuditWriter.close` make everything recorded so far durable.

``record`` must be called from the event loop the writer runs on.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Never, TypeVar, cast

from connectors.audit.events import AuditEvent, Redactor
from connectors.audit.sinks import AuditSink
from connectors.audit.spool import Spool
from connectors.clock import Clock, system_clock
from connectors.errors import LifecycleError

__all__ = ["AuditWriter", "WriterStats"]

T = TypeVar("T")
#: A queued event: built already, or the function that builds it and its argument (a build
#: function of any argument type: ``Never`` is the one every such function accepts).
_Queued = AuditEvent | tuple[Callable[[Never], AuditEvent], object]


@dataclass(frozen=True, slots=True)
class WriterStats:
    """Counters since the writer was created (``pending_spool`` is current)."""

    recorded: int
    delivered: int
    spooled: int
    sink_failures: int
    rejected: int
    pending_spool: int


class AuditWriter:
    """Batches audit events into a sink, spooling to a local file whenever it cannot keep up.

    ``spool_path`` should be on local disk, private to this process. ``redact`` is applied to
    every event's ``details`` strings before it is stored or spooled. ``on_sink_error`` is told
    about each failed sink write (for logs and metrics), and ``on_invalid`` about each event
    that ``record_later``'s ``build`` could not make (counted as rejected: there is nothing to
    store); neither may raise.
    """

    def __init__(
        self,
        sink: AuditSink,
        *,
        spool_path: Path,
        clock: Clock = system_clock,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_interval: float = 0.2,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        redact: Redactor | None = None,
        on_sink_error: Callable[[Exception], None] | None = None,
        on_invalid: Callable[[Exception], None] | None = None,
    ) -> None:
        if queue_size < 1 or batch_size < 1:
            raise ValueError("queue_size and batch_size must be at least 1")
        if flush_interval < 0 or retry_initial <= 0 or retry_max < retry_initial:
            raise ValueError("need flush_interval >= 0 and 0 < retry_initial <= retry_max")
        self._sink = sink
        self._clock = clock
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._redact = redact
        self._on_sink_error = on_sink_error
        self._on_invalid = on_invalid
        self._buffer: deque[_Queued] = deque()
        self._spool = Spool(spool_path)
        # A spool left by an earlier run holds the oldest events: new ones queue behind it.
        self._spooling = self._spool.has_pending
        self._recorded = self._spool.pending
        self._delivered = 0
        self._spooled = 0
        self._failures = 0
        self._rejected = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._linger: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- the hot path -------------------------------------------------------------------------

    def record(self, event: AuditEvent) -> None:
        """Queue ``event`` for writing. Never blocks, never drops; raises once closed."""
        self._queue(event)

    def record_later(self, build: Callable[[T], AuditEvent], arg: T) -> None:
        """Queue the event ``build(arg)`` makes, built when its batch is written (at once if
        the spool is in use). ``arg`` must carry whatever the event needs from now, its time
        above all. An event ``build`` cannot make is rejected (see ``on_invalid``)."""
        self._queue((build, arg))

    def _queue(self, item: _Queued) -> None:
        if self._closed:
            raise LifecycleError("the audit writer is closed; no more events can be recorded")
        self._recorded += 1
        buffer = self._buffer
        if self._spooling or len(buffer) >= self._queue_size:
            self._spooling = True
            event = self._built(item)
            if event is None:
                self._advance(1)
            else:
                self._spool.append([self._redacted(event)])
                self._spooled += 1
            self._ensure_task()
            self._wake.set()
            return
        buffer.append(item)
        size = len(buffer)
        if size == 1:
            task = self._task
            if task is None or task.done():
                # The background task ends when idle (no task lingers on a loop the writer's owner
                # may abandon); the first event after a quiet spell starts it again.
                self._ensure_task()
            else:
                self._wake.set()
        elif size == self._batch_size:
            self._end_linger()

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the background task (needs a running loop; ``async with`` calls it)."""
        if self._closed:
            raise LifecycleError("the audit writer is closed")
        self._ensure_task()

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def __aenter__(self) -> AuditWriter:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ``timeout`` runs on the injected clock, so asyncio.timeout() cannot replace it.
    async def flush(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait until every event recorded so far is in the sink.

        Returns ``True`` when they are. With a ``timeout`` (seconds on the writer's clock) that
        passes first, returns ``False`` after making them durable in the spool instead; the
        background task keeps retrying.
        """
        target = self._recorded
        if self._delivered >= target:
            return True
        self._ensure_task()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (target, done)
        self._waiters.append(entry)
        self._wake.set()
        self._end_linger()
        try:
            if timeout is None:
                await done
                return True
            if await self._wait(done, timeout):
                return True
            self._spill()
            await self._spool.sync()
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._waiters.remove(entry)

    async def close(self, timeout: float | None = 5.0) -> bool:  # noqa: ASYNC109
        """Stop accepting events, deliver what is queued (within ``timeout``), stop the task.

        Whatever the sink has not taken by then stays in the spool, fsync'd, for the next start.
        Returns whether everything reached the sink.
        """
        if self._closed:
            return self._delivered >= self._recorded
        self._closed = True
        delivered = True
        if self._task is not None or self._buffer or self._spooling:
            delivered = await self.flush(timeout)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._spill()
        await self._spool.sync()
        self._spool.close()
        closer = getattr(self._sink, "aclose", None)  # a sink holding a connection open
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        return delivered and self._delivered >= self._recorded

    def stats(self) -> WriterStats:
        return WriterStats(
            recorded=self._recorded,
            delivered=self._delivered,
            spooled=self._spooled,
            sink_failures=self._failures,
            rejected=self._rejected,
            pending_spool=self._spool.pending,
        )

    # -- the background task ------------------------------------------------------------------

    async def _run(self) -> None:
        delay = self._retry_initial
        while True:
            if self._buffer:
                if not self._waiters and len(self._buffer) < self._batch_size:
                    await self._linger_wait()
                ok = await self._drain_buffer()
            elif self._spooling:
                await self._spool.sync()
                ok = await self._replay()
            else:
                return  # idle: record() or flush() starts a new task when there is work
            if ok:
                delay = self._retry_initial
            else:
                await self._clock.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._retry_max)

    async def _drain_buffer(self) -> bool:
        buffer = self._buffer
        while buffer:
            count = min(self._batch_size, len(buffer))
            batch: list[AuditEvent] = []
            for _ in range(count):
                event = self._built(buffer.popleft())
                if event is not None:
                    batch.append(self._redacted(event))
            if len(batch) < count:
                self._advance(count - len(batch))  # rejected: nothing to deliver
                if not batch:
                    continue
            try:
                await self._sink.write_batch(batch)
            except asyncio.CancelledError:
                self._spill(front=batch)
                raise
            except Exception as exc:
                self._sink_failed(exc)
                self._spill(front=batch)
                return False
            self._advance(len(batch))
        return True

    async def _replay(self) -> bool:
        events, end, rejected = self._spool.read_batch(self._batch_size)
        if events:
            try:
                await self._sink.write_batch(events)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._sink_failed(exc)
                return False
        self._rejected += rejected
        self._spool.commit(end, len(events) + rejected)
        self._advance(len(events) + rejected)
        if not self._spool.has_pending and not self._buffer:
            self._spooling = False
        return True

    def _spill(self, front: list[AuditEvent] | None = None) -> None:
        """Move ``front`` and the whole memory queue to the head of the spool (they are older)."""
        events = list(front or ())
        rejected = 0
        for item in self._buffer:
            event = self._built(item)
            if event is None:
                rejected += 1
            else:
                events.append(self._redacted(event))
        self._buffer.clear()
        if rejected:
            self._advance(rejected)
        if not events:
            return
        self._spool.prepend(events)
        self._spooled += len(events)
        self._spooling = True

    def _sink_failed(self, exc: Exception) -> None:
        self._failures += 1
        if self._on_sink_error is not None:
            with contextlib.suppress(Exception):
                self._on_sink_error(exc)

    def _advance(self, count: int) -> None:
        self._delivered += count
        delivered = self._delivered
        for target, fut in self._waiters:
            if target <= delivered and not fut.done():
                fut.set_result(None)

    def _built(self, item: _Queued) -> AuditEvent | None:
        """The event of a queued item; ``None`` (and counted as rejected) if it cannot be built."""
        if isinstance(item, AuditEvent):
            return item
        build, arg = item
        try:
            return cast("Callable[[object], AuditEvent]", build)(arg)  # queued with its arg
        except Exception as exc:
            self._rejected += 1
            if self._on_invalid is not None:
                with contextlib.suppress(Exception):
                    self._on_invalid(exc)
            return None

    def _redacted(self, event: AuditEvent) -> AuditEvent:
        return event.redacted(self._redact) if self._redact is not None else event

    # -- waiting on the clock -----------------------------------------------------------------

    def _end_linger(self) -> None:
        linger = self._linger
        if linger is not None and not linger.done():
            linger.set_result(None)

    async def _linger_wait(self) -> None:
        """Give a batch up to ``flush_interval`` to fill (cut short when it does)."""
        linger: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._linger = linger
        try:
            await self._wait(linger, self._flush_interval)
        finally:
            self._linger = None

    async def _wait(self, fut: asyncio.Future[None], seconds: float) -> bool:
        """Wait for ``fut`` at most ``seconds`` on the clock; whether it completed."""
        if fut.done():
            return True
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait({fut, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sleeper
        return fut.done()
