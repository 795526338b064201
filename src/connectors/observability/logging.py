"""Structured logging: one structlog processor chain, redaction always last before rendering.

Nothing happens at import time. :func:`configure_logging` sets the level, the output format and
extra processors, explicitly and idempotently; it does not touch structlog's global
configuration or the standard library's handlers. Until it is called, events at WARNING and
above are written to standard error as JSON (redacted), and nothing else.

:func:`get_logger` returns a :class:`Logger`: a small proxy with structlog's bound-logger API
(``bind``, ``debug``... ``exception``) that follows later reconfiguration, so module-level
loggers and loggers bound before :func:`configure_logging` (structlog issue #400) pick up the new
chain. A call filtered by the level costs one comparison; an emitted call is handed to a
``structlog.make_filtering_bound_logger`` logger holding the current chain::

    merge_contextvars › CallContext fields › level › UTC timestamp › stack info
      › extra processors › exception rendering › Redactor › JSON or console renderer

A JSON line carries ``timestamp``, ``level``, ``event``, ``logger`` and whatever was bound:
``tenant``, ``connector``, ``operation``, ``request_id``, ``attempt``... The current
:class:`~connectors.context.CallContext` fills in ``tenant``, ``actor`` and ``request_id`` when a
call is running.
"""

from __future__ import annotations

import json
import logging as _stdlib_logging
import sys
import threading
from collections.abc import Callable, Iterator, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final, TextIO, TypeAlias

import structlog
from structlog.typing import FilteringBoundLogger, Processor

from connectors.context import current_context
from connectors.errors import InvalidSetting
from connectors.observability.redaction import Redactor, default_redactor

__all__ = [
    "LEVELS",
    "Logger",
    "add_call_context",
    "configure_logging",
    "get_logger",
    "intercept",
    "reset_logging",
]

#: Level names accepted by :func:`configure_logging`, with their numbers.
LEVELS: dict[str, int] = {
    "DEBUG": _stdlib_logging.DEBUG,
    "INFO": _stdlib_logging.INFO,
    "WARNING": _stdlib_logging.WARNING,
    "ERROR": _stdlib_logging.ERROR,
    "CRITICAL": _stdlib_logging.CRITICAL,
}
_DEBUG = _stdlib_logging.DEBUG
_INFO = _stdlib_logging.INFO
_WARNING = _stdlib_logging.WARNING
_ERROR = _stdlib_logging.ERROR
_CRITICAL = _stdlib_logging.CRITICAL

EventDict: TypeAlias = MutableMapping[str, object]
Sink = Callable[[EventDict], None]


def add_call_context(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
    """Processor: add the current call's tenant, actor and request id (explicit fields win)."""
    ctx = current_context()
    if ctx is not None:
        event_dict.setdefault("tenant", ctx.tenant)
        event_dict.setdefault("actor", ctx.actor)
        event_dict.setdefault("request_id", ctx.request_id)
    return event_dict


_HEAD: Final = ("timestamp", "level", "event")


def _render_json(logger: object, method_name: str, event_dict: EventDict) -> str:
    """One JSON line: ``timestamp``, ``level`` and ``event`` first, then the fields as bound."""
    ordered = {key: event_dict[key] for key in _HEAD if key in event_dict}
    ordered.update(event_dict)
    return json.dumps(ordered, default=str, ensure_ascii=False)


class _StreamLogger:
    """The end of the chain: writes each rendered line to a stream (standard error by default).

    The stream is looked up on every write so that a replaced ``sys.stderr`` (pytest's capture,
    a daemon's redirect) is honoured.
    """

    __slots__ = ("_lock", "_stream")

    def __init__(self, stream: TextIO | None) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def msg(self, message: str) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with self._lock:
            stream.write(message + "\n")
            stream.flush()

    debug = info = warning = warn = error = critical = exception = fatal = log = msg


@dataclass(slots=True)
class _State:
    """One configuration: the chain, where it writes, and the level it filters at."""

    level: int
    fmt: str = "json"
    extra: tuple[Processor, ...] = ()
    redactor: Redactor | None = None
    stream: TextIO | None = None
    renderer: Processor | None = None
    generation: int = 0
    processors: list[Processor] = field(default_factory=list)
    sink: object = None
    wrapper: type[FilteringBoundLogger] = field(init=False)

    def __post_init__(self) -> None:
        self.wrapper = structlog.make_filtering_bound_logger(self.level)

    def build(self) -> _State:
        """Fill in the chain (deferred so that nothing is built at import time)."""
        redactor = self.redactor if self.redactor is not None else default_redactor()
        renderer = self.renderer
        if renderer is None:
            renderer = (
                _render_json if self.fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
            )
        self.redactor = redactor
        self.processors = [
            structlog.contextvars.merge_contextvars,
            add_call_context,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.StackInfoRenderer(),
            *self.extra,
            structlog.processors.format_exc_info,
            redactor,  # always last before rendering: nothing added after it escapes redaction
            renderer,
        ]
        self.sink = _StreamLogger(self.stream)
        return self


# Unconfigured: WARNING and above, JSON on standard error; the chain is built on first use.
_state = _State(level=_WARNING)
_state_lock = threading.Lock()
_configured = False


def _install(fresh: _State) -> None:
    global _state
    fresh.generation = _state.generation + 1
    _state = fresh.build()


def configure_logging(
    level: str = "INFO",
    fmt: str = "json",
    *,
    extra_processors: Sequence[Processor] = (),
    redactor: Redactor | None = None,
    stream: TextIO | None = None,
) -> None:
    """Set the framework's log level, format (``json`` or ``console``) and extra processors.

    Idempotent: calling it again with the same arguments changes nothing; with other arguments
    it replaces the configuration, and every existing :class:`Logger` follows. ``extra_processors``
    run before redaction, so whatever they add is redacted too. ``redactor`` defaults to the
    process-wide one (live ``Secret`` values); ``stream`` defaults to standard error.
    """
    global _configured
    number = LEVELS.get(level.upper()) if isinstance(level, str) else None
    if number is None:
        raise InvalidSetting("log_level", level, "one of " + ", ".join(LEVELS))
    if fmt not in ("json", "console"):
        raise InvalidSetting("log_format", fmt, "one of 'json', 'console'")
    chosen = redactor if redactor is not None else default_redactor()
    extra = tuple(extra_processors)
    with _state_lock:
        current = _state
        if _configured and (
            current.level,
            current.fmt,
            current.extra,
            current.redactor,
            current.stream,
        ) == (number, fmt, extra, chosen, stream):
            return
        _install(_State(number, fmt, extra, chosen, stream))
        _configured = True


def reset_logging() -> None:
    """Back to the unconfigured default (WARNING and above, JSON, standard error)."""
    global _configured
    with _state_lock:
        _install(_State(level=_WARNING))
        _configured = False


@contextmanager
def intercept(sink: Sink, *, level: str = "DEBUG") -> Iterator[None]:
    """Route events to ``sink`` instead of the output, fully processed and redacted.

    ``sink`` receives each event dict exactly as the renderer would have (after the redaction
    processor). For tests (:func:`connectors.testing.capture.capture_logs`) and live log views.
    Process-wide for the duration of the block; the previous configuration comes back after.
    """
    global _state
    number = LEVELS[level.upper()]

    def deliver(logger: object, method_name: str, event_dict: EventDict) -> EventDict:
        sink(event_dict)
        raise structlog.DropEvent

    with _state_lock:
        previous = _state
        if not previous.processors:
            previous.build()
        _install(
            _State(
                number,
                previous.fmt,
                previous.extra,
                previous.redactor,
                renderer=deliver,
            )
        )
    try:
        yield
    finally:
        with _state_lock:
            previous.generation = _state.generation + 1
            _state = previous


class Logger:
    """A structlog-style bound logger that follows :func:`configure_logging`.

    ``bind``/``new``/``unbind`` return new loggers; the log methods take an event name and
    keyword fields. Filtered calls return after a single level comparison.
    """

    __slots__ = ("_bound", "_context", "_generation")

    def __init__(self, context: dict[str, object]) -> None:
        self._context = context
        self._generation = -1
        self._bound: FilteringBoundLogger | None = None

    def __repr__(self) -> str:
        return f"<Logger {self._context.get('logger', '')!s} context={sorted(self._context)}>"

    # --- context ---------------------------------------------------------------------------------

    def bind(self, **fields: object) -> Logger:
        """A logger whose events also carry ``fields``."""
        return Logger({**self._context, **fields})

    def new(self, **fields: object) -> Logger:
        """A logger with only the logger name and ``fields`` bound."""
        base = {"logger": self._context["logger"]} if "logger" in self._context else {}
        return Logger({**base, **fields})

    def unbind(self, *keys: str) -> Logger:
        """A logger without ``keys`` (``KeyError`` if one is not bound)."""
        context = dict(self._context)
        for key in keys:
            del context[key]
        return Logger(context)

    def try_unbind(self, *keys: str) -> Logger:
        """A logger without ``keys``, ignoring keys that are not bound."""
        return Logger({k: v for k, v in self._context.items() if k not in keys})

    @property
    def context(self) -> dict[str, object]:
        """A copy of the bound fields."""
        return dict(self._context)

    def is_enabled_for(self, level: int | str) -> bool:
        """Whether an event at ``level`` would be emitted."""
        number = LEVELS[level.upper()] if isinstance(level, str) else level
        return number >= _state.level

    # --- emitting --------------------------------------------------------------------------------

    def _target(self) -> FilteringBoundLogger:
        state = _state
        if not state.processors:
            with _state_lock:
                if not state.processors:
                    state.build()
        if self._generation != state.generation or self._bound is None:
            self._bound = state.wrapper(state.sink, state.processors, self._context)  # type: ignore[call-arg]
            self._generation = state.generation
        return self._bound

    def debug(self, event: str, *args: object, **fields: object) -> None:
        """Log at DEBUG (successful calls; filtered by default)."""
        if _state.level > _DEBUG:
            return
        self._target().debug(event, *args, **fields)

    def info(self, event: str, *args: object, **fields: object) -> None:
        """Log at INFO."""
        if _state.level > _INFO:
            return
        self._target().info(event, *args, **fields)

    def warning(self, event: str, *args: object, **fields: object) -> None:
        """Log at WARNING."""
        if _state.level > _WARNING:
            return
        self._target().warning(event, *args, **fields)

    warn = warning

    def error(self, event: str, *args: object, **fields: object) -> None:
        """Log at ERROR."""
        if _state.level > _ERROR:
            return
        self._target().error(event, *args, **fields)

    def critical(self, event: str, *args: object, **fields: object) -> None:
        """Log at CRITICAL."""
        if _state.level > _CRITICAL:
            return
        self._target().critical(event, *args, **fields)

    def exception(self, event: str, *args: object, **fields: object) -> None:
        """Log at ERROR with the exception being handled (rendered, then redacted)."""
        if _state.level > _ERROR:
            return
        fields.setdefault("exc_info", True)
        self._target().error(event, *args, **fields)

    def log(self, level: int, event: str, *args: object, **fields: object) -> None:
        """Log at a numeric level."""
        if _state.level > level:
            return
        self._target().log(level, event, *args, **fields)


def get_logger(name: str, **fields: object) -> Logger:
    """A logger named ``name`` (shown as the ``logger`` field), with optional bound fields.

    Cheap and side-effect free: safe at module level.
    """
    return Logger({"logger": name, **fields})
