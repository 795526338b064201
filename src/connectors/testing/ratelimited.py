"""A loopback API that enforces ``rate`` requests per second and answers 429 above it.

A client-side limit is only proven by what a provider *sees*. :class:`RateLimitedAPI` is such a
provider, reduced to its limit: an ASGI app (serve it with uvicorn, e.g. through
:class:`connectors.testing.pytest_plugin.LoopbackServer`) that admits or refuses every request
and records when each one arrived, so a test can measure the rate at the server and count the
429s it sent.

Enforcement is GCRA (virtual scheduling), the algorithm behind most published per-second limits.
Each admitted request moves a theoretical arrival time ``tat`` on by ``1 / rate``; a request that
arrives before ``tat - (burst - 1) / rate`` is refused, does not use up quota, and gets
``429 Too Many Requests`` with ``Retry-After`` (whole seconds, rounded up) and a JSON error body.
So any interval of ``t`` seconds admits at most ``rate * t + burst`` requests.

``burst`` is the tolerance for arrival jitter, and the one number to state next to any result. A
client that paces exactly ``rate`` per second still has its requests delayed unevenly by
scheduling, the network and the server's own event loop; and since such a client leaves the
server no slack, GCRA remembers the largest delay of the whole run: after one late burst every
later on-time request looks early by that much. A strict spacing (``burst=1``) would refuse a
request that arrives a millisecond early after one that arrived a millisecond late. The default,
``rate / 5`` (at least 1), tolerates 200 ms of such jitter: four client processes on a loaded
2-core machine (two extra CPU hogs) needed at most ~115 ms. It never lets the long-run rate pass
``rate``. :attr:`RateLimitedAPI.peak_burst` reports the burst the traffic actually needed, to
show the margin.

Routes (``/_`` paths are control routes: not limited, not counted):

``GET /_stats``
    JSON :meth:`RateLimitedAPI.stats`; ``?start=&end=`` (seconds on the emulator's monotonic
    clock, which on Linux every process of the host shares) adds the counts in that window.
``POST /_reset``
    Forget every arrival and the limiter state.
anything else
    The limited API: ``200 {"ok": true}`` or ``429``. Request bodies are read and ignored.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import Receive, Scope, Send

from connectors.clock import Clock, system_clock

__all__ = ["RateLimitedAPI", "WindowCounts"]

_JSON = (b"content-type", b"application/json")
_OK_BODY = b'{"ok":true}'
#: Seconds of float rounding forgiven when comparing times (a nanosecond).
_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class WindowCounts:
    """Requests that arrived in ``[start, end)``: admitted (200) and refused (429)."""

    start: float
    end: float
    admitted: int
    rejected: int

    @property
    def rate(self) -> float:
        """Admitted requests per second over the window."""
        return self.admitted / (self.end - self.start) if self.end > self.start else 0.0


class RateLimitedAPI:
    """The rate-enforcing ASGI app (see the module docstring).

    Thread-safe: uvicorn serves it on one thread while a test reads :meth:`stats` or
    :meth:`window` on another.
    """

    def __init__(
        self, rate: float, burst: float | None = None, *, clock: Clock = system_clock
    ) -> None:
        if not rate > 0 or math.isinf(rate):
            raise ValueError(f"rate must be a finite number of requests per second > 0, not {rate}")
        if burst is None:
            burst = max(1.0, rate / 5)
        if not burst >= 1 or math.isinf(burst):
            raise ValueError(f"burst must be a finite number of requests >= 1, not {burst}")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self._interval = 1.0 / self.rate
        self._tolerance = (self.burst - 1.0) / self.rate
        self._lock = threading.Lock()
        self._tat = -math.inf
        self._lead = 0.0
        self._admitted: list[float] = []
        self._rejected: list[float] = []

    def __repr__(self) -> str:
        return f"<RateLimitedAPI rate={self.rate:g}/s burst={self.burst:g}>"

    # --- the limit ---------------------------------------------------------------------------

    def hit(self) -> float | None:
        """Decide on one request arriving now: ``None`` when admitted, else the seconds until
        it would have been (what ``Retry-After`` says)."""
        with self._lock:
            now = self.clock.monotonic()
            tat = max(self._tat, now)
            lead = tat - now
            if lead > self._tolerance + _EPSILON:
                self._rejected.append(now)
                return lead - self._tolerance
            self._tat = tat + self._interval
            self._lead = max(self._lead, lead)
            self._admitted.append(now)
            return None

    def reset(self) -> None:
        """Forget every arrival and the limiter state."""
        with self._lock:
            self._tat = -math.inf
            self._lead = 0.0
            self._admitted.clear()
            self._rejected.clear()

    # --- what the server saw -----------------------------------------------------------------

    @property
    def admitted(self) -> int:
        return len(self._admitted)

    @property
    def rejected(self) -> int:
        """429s sent so far."""
        return len(self._rejected)

    @property
    def peak_burst(self) -> float:
        """The smallest ``burst`` that would have admitted every request admitted so far."""
        return 1.0 + self._lead * self.rate

    def window(self, start: float, end: float) -> WindowCounts:
        """Arrivals in ``[start, end)`` (seconds on :attr:`clock`'s monotonic scale)."""
        with self._lock:
            return WindowCounts(
                start,
                end,
                bisect.bisect_left(self._admitted, end) - bisect.bisect_left(self._admitted, start),
                bisect.bisect_left(self._rejected, end) - bisect.bisect_left(self._rejected, start),
            )

    def per_second(self) -> list[tuple[int, int]]:
        """(admitted, rejected) in each whole second since the first arrival."""
        with self._lock:
            stamps = [(t, 0) for t in self._admitted] + [(t, 1) for t in self._rejected]
        if not stamps:
            return []
        first = min(t for t, _ in stamps)
        seconds = [[0, 0] for _ in range(int(max(t for t, _ in stamps) - first) + 1)]
        for t, refused in stamps:
            seconds[int(t - first)][refused] += 1
        return [(ok, no) for ok, no in seconds]

    def stats(self) -> dict[str, object]:
        """Totals, the burst actually needed, and per-second counts, as JSON-ready data."""
        with self._lock:
            first = min(self._admitted[:1] + self._rejected[:1], default=None)
        return {
            "rate": self.rate,
            "burst": self.burst,
            "admitted": self.admitted,
            "rejected": self.rejected,
            "peak_burst": round(self.peak_burst, 3),
            "first_arrival": first,
            "per_second": self.per_second(),
        }

    # --- ASGI --------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_"):
            await self._control(scope, path, send)
            return
        wait = self.hit()
        while (await receive()).get("more_body"):
            pass
        if wait is None:
            await _respond(send, 200, _OK_BODY)
            return
        retry_after = str(max(1, math.ceil(wait))).encode()
        body = json.dumps(
            {"error": "rate_limited", "message": f"more than {self.rate:g} requests per second"}
        ).encode()
        await _respond(send, 429, body, (b"retry-after", retry_after))

    async def _control(self, scope: Scope, path: str, send: Send) -> None:
        if path == "/_reset" and scope["method"] == "POST":
            self.reset()
            await _respond(send, 200, _OK_BODY)
        elif path == "/_stats" and scope["method"] == "GET":
            stats = self.stats()
            query = parse_qs(scope.get("query_string", b"").decode())
            if "start" in query and "end" in query:
                try:
                    counts = self.window(float(query["start"][0]), float(query["end"][0]))
                except ValueError:
                    await _respond(send, 400, b'{"error":"start and end must be numbers"}')
                    return
                stats["window"] = {
                    "start": counts.start,
                    "end": counts.end,
                    "admitted": counts.admitted,
                    "rejected": counts.rejected,
                    "rate": counts.rate,
                }
            await _respond(send, 200, json.dumps(stats).encode())
        else:
            await _respond(send, 404, b'{"error":"not_found"}')


async def _respond(send: Send, status: int, body: bytes, *extra: tuple[bytes, bytes]) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
