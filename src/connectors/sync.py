"""The sync face: run the async core on one background event loop per process.

Scripts and notebooks call ``connectors.get_connector(...)`` and get a :class:`SyncConnector`
whose operations block until done. There is one implementation of every operation — the async one;
the sync face submits coroutines to a daemon thread running an event loop, and turns async
iterators into plain iterators. It is thread-safe (any thread may call it, concurrently) and shuts
down cleanly at interpreter exit, closing every connector it opened.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import functools
import inspect
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, TypeVar

from connectors.base import Connector
from connectors.errors import ConfigurationError

__all__ = ["BackgroundLoop", "SyncConnector", "background_loop"]

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="connectors-loop", daemon=True)
        self.thread.start()
        self._ready.wait()
        self._closed = False
        self._handles: weakref.WeakSet[SyncConnector] = weakref.WeakSet()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait for its result (exceptions propagate as they are)."""
        if threading.current_thread() is self.thread:
            coro.close()
            raise ConfigurationError(
                "the sync API was called from inside the connectors event loop",
                hint="inside async code, use `open_connector` and `await` the operations",
            )
        if self._closed:
            coro.close()
            raise ConfigurationError("the connectors background loop has been shut down")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise
        except KeyboardInterrupt:
            future.cancel()
            raise

    def track(self, handle: SyncConnector) -> None:
        self._handles.add(handle)

    def shutdown(self) -> None:
        """Close every open connector, then stop and close the loop. Idempotent."""
        if self._closed:
            return
        for handle in list(self._handles):
            try:
                handle.close()
            except Exception:  # noqa: S112 - best effort at exit, keep closing the others
                continue
        self._closed = True

        async def _cancel_rest() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        with contextlib.suppress(Exception):  # at exit, the loop may already be wedged
            asyncio.run_coroutine_threadsafe(_cancel_rest(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


_loop: BackgroundLoop | None = None
_loop_lock = threading.Lock()


def background_loop() -> BackgroundLoop:
    """The process's background loop, started on first use."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop._closed:
            _loop = BackgroundLoop()
            atexit.register(_loop.shutdown)
        return _loop


class SyncConnector:
    """A blocking handle on a connected :class:`Connector`.

    Every ``@operation`` of the adapter is available with the same name and arguments and blocks
    until done; streaming operations return a plain iterator. ``close()`` (or ``with``) disconnects.
    """

    def __init__(self, connector: Connector, loop: BackgroundLoop) -> None:
        self._connector = connector
        self._loop = loop
        self._methods: dict[str, Callable[..., Any]] = {}
        loop.track(self)

    @property
    def connector(self) -> Connector:
        """The underlying async connector (use it only from async code on the same loop)."""
        return self._connector

    def __getattr__(self, name: str) -> Any:
        cached = self._methods.get(name)
        if cached is not None:
            return cached
        attr = getattr(self._connector, name)
        if inspect.isasyncgenfunction(attr) or _is_stream_operation(attr):
            wrapped: Callable[..., Any] = self._wrap_stream(attr)
        elif inspect.iscoroutinefunction(attr):
            wrapped = self._wrap_call(attr)
        else:
            return attr
        self._methods[name] = wrapped
        return wrapped

    def _wrap_call(self, method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., T]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> T:
            return self._loop.run(method(*args, **kwargs))

        return call

    def _wrap_stream(self, method: Callable[..., AsyncIterator[T]]) -> Callable[..., Iterator[T]]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Iterator[T]:
            return _SyncIterator(method(*args, **kwargs), self._loop)

        return call

    def health_check(self) -> Any:
        return self._loop.run(self._connector.health_check())

    def close(self) -> None:
        """Disconnect the connector (idempotent)."""
        self._loop.run(self._connector.disconnect())

    def __enter__(self) -> SyncConnector:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self._connector
        return f"<SyncConnector {c.instance_name} tenant={c.tenant} state={c.state.value}>"


def _is_stream_operation(attr: object) -> bool:
    func = getattr(attr, "__func__", attr)
    return inspect.isasyncgenfunction(getattr(func, "__wrapped__", None))


class _SyncIterator(Iterator[T]):
    """Pulls an async iterator one item at a time through the background loop."""

    def __init__(self, source: AsyncIterator[T], loop: BackgroundLoop) -> None:
        self._source = source
        self._loop = loop
        self._done = False

    def __iter__(self) -> _SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            return self._loop.run(_anext(self._source))
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None

    def close(self) -> None:
        """Stop early and release the stream (also called when garbage collected)."""
        if not self._done:
            self._done = True
            aclose = getattr(self._source, "aclose", None)
            if aclose is not None:
                self._loop.run(aclose())

    def __del__(self) -> None:
        if not self._done and not self._loop._closed:
            with contextlib.suppress(Exception):  # never raise from a finaliser
                self.close()


async def _anext(source: AsyncIterator[T]) -> T:
    return await source.__anext__()
