"""Fault injection: the spec parser, deterministic decisions, rates, and what a client sees."""

from __future__ import annotations

import asyncio
import contextlib
import math
import statistics
from collections import Counter

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from connectors.clock import FakeClock
from connectors.errors import DefinitionError
from connectors.testing.faults import (
    DroppedConnection,
    ErrorFault,
    FaultInjector,
    FaultPlan,
    Latency,
    RateFault,
    RateLimitFault,
    SlowBodyFault,
    parse_fault_spec,
)

EXAMPLE = (
    "5xx=0.1,429=0.05:retry_after=2,latency=50ms~20ms,drop=0.02,slow_body=0.01,expire_token_at=100"
)


# --- parser --------------------------------------------------------------------------------------


def test_the_documented_example_parses() -> None:
    plan = parse_fault_spec(EXAMPLE)
    assert plan.errors == ErrorFault(0.1)
    assert plan.rate_limit == RateLimitFault(0.05, retry_after=2.0)
    assert plan.latency == Latency("normal", 0.05, 0.02)
    assert plan.drop == RateFault(0.02)
    assert plan.slow_body == SlowBodyFault(0.01)
    assert plan.expire_token_at == (100,)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("", FaultPlan()),
        (" latency=20ms..80ms:p=50% ", FaultPlan(latency=Latency("uniform", 0.02, 0.08, 0.5))),
        ("latency=1.5", FaultPlan(latency=Latency("fixed", 1.5))),
        ("latency=250us", FaultPlan(latency=Latency("fixed", 0.00025))),
        ("503=0.2:body=empty", FaultPlan(errors=ErrorFault(0.2, (503,), "empty"))),
        ("5xx=1:codes=502|504", FaultPlan(errors=ErrorFault(1.0, (502, 504)))),
        ("429=1:storm=5", FaultPlan(rate_limit=RateLimitFault(1.0, storm_count=5))),
        ("429=0.1:storm=2s", FaultPlan(rate_limit=RateLimitFault(0.1, storm_seconds=2.0))),
        ("drop_after=0.3", FaultPlan(drop_after=RateFault(0.3))),
        ("slow_body=1:chunk=10:delay=5ms", FaultPlan(slow_body=SlowBodyFault(1.0, 10, 0.005))),
        ("expire_token_at=30|10|30", FaultPlan(expire_token_at=(10, 30))),
        (
            "drop=1:paths=/api/chat.*,paths=/api/*|/upload/*,seed=7",
            FaultPlan(drop=RateFault(1.0, ("/api/chat.*",)), paths=("/api/*", "/upload/*"), seed=7),
        ),
    ],
)
def test_valid_specs(spec: str, expected: FaultPlan) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "fragment", "column"),
    [
        ("boom=1", "unknown fault kind 'boom'", 1),
        ("5xx=0.1, 5xx=0.2", "given twice", 10),
        ("500=0.1,503=0.1", "given twice", 9),
        ("5xx=1.5", "between 0 and 1", 1),
        ("5xx=abc", "number in [0, 1]", 1),
        ("5xx", "needs a value", 1),
        ("latency=fast", "duration like 50ms", 1),
        ("latency=80ms..20ms", "must go up", 1),
        ("429=0.1:retry=2", "unknown option 'retry'", 1),
        ("429=0.1:storm=0", "must be >= 1", 1),
        ("5xx=0.1:codes=418", "500, 502, 503 and 504", 1),
        ("5xx=0.1:body=xml", "html, json or empty", 1),
        ("drop=0.1:paths=", "needs a value", 1),
        ("paths=/a b", "glob patterns", 1),
        ("expire_token_at=0", "must be >= 1", 1),
        ("seed=-1", "whole number", 1),
        ("drop=0.1:chunk=3", "unknown option 'chunk'", 1),
    ],
)
def test_invalid_specs_raise_definition_errors_that_point_at_the_item(
    spec: str, fragment: str, column: int
) -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_fault_spec(spec)
    assert fragment in str(caught.value)
    assert caught.value.column == column
    assert str(caught.value).startswith(f"fault spec:1:{column}: ")


def test_unknown_kind_lists_the_known_ones() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_fault_spec("latncy=5ms")
    assert caught.value.hint is not None
    assert "latency" in caught.value.hint


@settings(max_examples=400)
@given(st.text(alphabet=st.sampled_from(list("5x0249=.,:|~ms%abcdelprty_/*-")), max_size=60))
def test_parser_never_fails_with_anything_but_a_definition_error(spec: str) -> None:
    with contextlib.suppress(DefinitionError):
        parse_fault_spec(spec)


@given(st.text(max_size=80))
def test_parser_survives_arbitrary_text(spec: str) -> None:
    with contextlib.suppress(DefinitionError):
        parse_fault_spec(spec)


rates = st.floats(0, 1, allow_nan=False)
durations = st.floats(0, 10_000, allow_nan=False)
path_lists = st.lists(st.sampled_from(["/api/*", "/upload/*", "/x"]), max_size=2, unique=True)


@st.composite
def latencies(draw: st.DrawFn) -> Latency:
    kind = draw(st.sampled_from(["fixed", "uniform", "normal"]))
    a, b = sorted((draw(durations), draw(durations)))
    if kind == "fixed":
        b = 0.0
    return Latency(kind, a, b, draw(rates), tuple(draw(path_lists)))


@st.composite
def rate_limits(draw: st.DrawFn) -> RateLimitFault:
    seconds = draw(st.none() | durations)
    count = 1 if seconds is not None else draw(st.integers(1, 50))
    return RateLimitFault(draw(rates), draw(durations), count, seconds, tuple(draw(path_lists)))


codes = st.lists(st.sampled_from([500, 502, 503, 504]), min_size=1, max_size=4).map(tuple)
plans = st.builds(
    FaultPlan,
    latency=st.none() | latencies(),
    errors=st.none()
    | st.builds(
        ErrorFault,
        rate=rates,
        codes=codes,
        body=st.sampled_from(["html", "json", "empty"]),
        paths=path_lists.map(tuple),
    ),
    rate_limit=st.none() | rate_limits(),
    drop=st.none() | st.builds(RateFault, rate=rates, paths=path_lists.map(tuple)),
    drop_after=st.none() | st.builds(RateFault, rate=rates),
    slow_body=st.none()
    | st.builds(SlowBodyFault, rate=rates, chunk=st.integers(1, 10_000), delay=durations),
    expire_token_at=st.lists(st.integers(1, 10**6), unique=True).map(lambda xs: tuple(sorted(xs))),
    paths=path_lists.map(tuple),
    seed=st.none() | st.integers(0, 10**9),
)


@given(plans)
def test_a_plan_prints_as_a_spec_that_parses_back_to_it(plan: FaultPlan) -> None:
    assert parse_fault_spec(str(plan)) == plan


# --- decisions -----------------------------------------------------------------------------------


def _injector(spec: str, seed: int = 0, clock: FakeClock | None = None) -> FaultInjector:
    return FaultInjector(_app(), spec, seed=seed, clock=clock or FakeClock())


def test_same_seed_gives_the_same_sequence_and_another_seed_does_not() -> None:
    a, b, c = _injector(EXAMPLE, 3), _injector(EXAMPLE, 3), _injector(EXAMPLE, 4)
    seq_a = [a.decide("/api/x") for _ in range(2000)]
    seq_b = [b.decide("/api/x") for _ in range(2000)]
    seq_c = [c.decide("/api/x") for _ in range(2000)]
    assert seq_a == seq_b
    assert seq_a != seq_c


def test_the_spec_seed_overrides_the_constructor_seed() -> None:
    a, b = _injector(EXAMPLE + ",seed=9", seed=1), _injector(EXAMPLE, seed=9)
    assert [a.decide("/") for _ in range(500)] == [b.decide("/") for _ in range(500)]


def _within(count: int, n: int, p: float) -> bool:
    sigma = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= 4.5 * sigma + 1


def test_rates_hold_over_ten_thousand_requests() -> None:
    injector = _injector("5xx=0.1,429=0.05,drop=0.02,drop_after=0.03,slow_body=0.01", seed=11)
    decisions = [injector.decide("/api/x") for _ in range(10_000)]
    kinds = Counter()
    for d in decisions:
        assert d is not None
        kinds["drop"] += d.drop
        kinds["429"] += d.status == 429
        kinds["5xx"] += d.status is not None and d.status >= 500
        kinds["drop_after"] += d.drop_after
        kinds["slow"] += d.slow_body is not None
    n = 10_000
    assert _within(kinds["drop"], n, 0.02)
    assert _within(kinds["429"], n, 0.98 * 0.05)
    assert _within(kinds["5xx"], n, 0.98 * 0.95 * 0.1)
    assert _within(kinds["slow"], n, 0.01)
    assert _within(kinds["drop_after"], n, 0.98 * 0.95 * 0.9 * 0.03)
    codes = Counter(d.status for d in decisions if d.status and d.status >= 500)
    assert set(codes) == {500, 502, 503, 504}
    assert all(_within(c, sum(codes.values()), 0.25) for c in codes.values())


def test_latency_distributions_have_their_parameters() -> None:
    normal = _injector("latency=50ms~20ms", seed=5)
    samples = [normal.decide("/").latency for _ in range(10_000)]
    assert min(samples) >= 0.0
    assert abs(statistics.fmean(samples) - 0.05) < 0.002
    assert abs(statistics.pstdev(samples) - 0.02) < 0.002
    uniform = _injector("latency=20ms..80ms:p=0.5", seed=5)
    values = [uniform.decide("/").latency for _ in range(10_000)]
    delayed = [v for v in values if v > 0]
    assert _within(len(delayed), 10_000, 0.5)
    assert min(delayed) >= 0.02
    assert max(delayed) <= 0.08
    clipped = _injector("latency=1ms~50ms", seed=2)
    assert min(clipped.decide("/").latency for _ in range(2000)) == 0.0


def test_a_storm_is_a_burst_of_consecutive_429s() -> None:
    injector = _injector("429=0.02:storm=6:retry_after=3", seed=1)
    decisions = [injector.decide("/") for _ in range(3000)]
    statuses = [d.status for d in decisions]
    start = statuses.index(429)
    assert statuses[start : start + 6] == [429] * 6
    assert {d.retry_after for d in decisions if d.status == 429} == {3.0}
    runs, run = [], 0
    for status in statuses:
        if status == 429:
            run += 1
        elif run:
            runs.append(run)
            run = 0
    assert min(runs) >= 6


def test_a_timed_storm_lasts_its_duration_on_the_clock() -> None:
    clock = FakeClock()
    injector = _injector("429=0.01:storm=2s", seed=1, clock=clock)
    while injector.decide("/").status != 429:
        pass
    assert all(injector.decide("/").status == 429 for _ in range(200))  # time stands still
    clock.advance(1.9)
    assert injector.decide("/").status == 429
    clock.advance(0.2)
    # Over: the next request gets its own draw (rate 0.01; deterministic for this seed).
    assert injector.decide("/").status is None


def test_path_filters_limit_faults_and_request_indexes() -> None:
    injector = _injector("drop=1:paths=/api/chat.*,paths=/api/*")
    assert injector.decide("/upload/F1") is None
    assert injector.requests == 0
    assert injector.decide("/api/users.list").drop is False
    assert injector.decide("/api/chat.postMessage").drop is True
    assert injector.requests == 2


def test_no_plan_consumes_nothing() -> None:
    injector = _injector("")
    assert injector.decide("/api/x") is None
    assert injector.requests == 0
    assert parse_fault_spec("seed=3,paths=/x").empty


# --- what a client sees --------------------------------------------------------------------------


def _app() -> Starlette:
    hits: list[str] = []

    async def echo(request: Request) -> Response:
        hits.append(request.url.path)
        return PlainTextResponse("x" * 2000)

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["GET", "POST"])])
    app.state.hits = hits
    return app


def _run(injector: FaultInjector, calls: int = 1, path: str = "/api/test") -> list[object]:
    async def main() -> list[object]:
        out: list[object] = []
        transport = httpx2.ASGITransport(app=injector)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            for _ in range(calls):
                try:
                    out.append(await client.get(path))
                except httpx2.TransportError as exc:
                    out.append(exc)
        return out

    return asyncio.run(main())


def test_client_sees_server_errors_with_html_bodies() -> None:
    injector = _injector("503=1")
    (response,) = _run(injector)
    assert isinstance(response, httpx2.Response)
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("text/html")
    assert injector.counters["5xx"] == 1


def test_client_sees_429_with_retry_after() -> None:
    injector = _injector("429=1:retry_after=2.5")
    (response,) = _run(injector)
    assert isinstance(response, httpx2.Response)
    assert (response.status_code, response.headers["retry-after"]) == (429, "2.5")
    assert response.json() == {"ok": False, "error": "ratelimited"}


def test_client_sees_latency_through_the_clock() -> None:
    clock = FakeClock()
    injector = _injector("latency=120ms", clock=clock)
    (response,) = _run(injector)
    assert isinstance(response, httpx2.Response)
    assert response.status_code == 200
    assert clock.sleeps == [0.12]


def test_drop_before_the_app_raises_a_transport_error_and_the_app_never_runs() -> None:
    injector = _injector("drop=1")
    (outcome,) = _run(injector)
    assert isinstance(outcome, DroppedConnection)
    assert isinstance(outcome, httpx2.RemoteProtocolError)
    assert injector.app.state.hits == []  # type: ignore[attr-defined]


def test_drop_after_the_app_ran_is_an_ambiguous_outcome() -> None:
    injector = _injector("drop_after=1")
    (outcome,) = _run(injector)
    assert isinstance(outcome, httpx2.RemoteProtocolError)
    assert injector.app.state.hits == ["/api/test"]  # type: ignore[attr-defined]
    assert injector.counters["drop_after"] == 1


def test_slow_body_streams_in_chunks_with_delays() -> None:
    clock = FakeClock()
    injector = _injector("slow_body=1:chunk=500:delay=10ms", clock=clock)
    (response,) = _run(injector)
    assert isinstance(response, httpx2.Response)
    assert response.text == "x" * 2000
    assert clock.sleeps == [0.01, 0.01, 0.01]


def test_expire_token_at_calls_the_hook_on_the_nth_request() -> None:
    calls: list[int] = []
    injector = FaultInjector(
        _app(), "expire_token_at=2|4", clock=FakeClock(), on_expire_tokens=lambda: calls.append(1)
    )
    _run(injector, calls=5)
    assert len(calls) == 2
    assert injector.counters["expire_tokens"] == 2


def test_expire_token_at_expires_the_slack_emulators_rotating_tokens() -> None:
    from connectors.testing.slack import SlackEmulatorConfig, create_slack_app

    clock = FakeClock()
    emulator = create_slack_app(SlackEmulatorConfig(rate_limits=False), clock=clock)
    token = emulator.issue_token(rotating=True).access_token
    injector = FaultInjector(
        emulator.app, "expire_token_at=3", clock=clock, on_expire_tokens=emulator.expire_tokens
    )

    async def main() -> list[str]:
        transport = httpx2.ASGITransport(app=injector)
        async with httpx2.AsyncClient(transport=transport, base_url="http://t") as client:
            headers = {"Authorization": f"Bearer {token}"}
            return [
                (await client.post("/api/auth.test", headers=headers)).json().get("error", "ok")
                for _ in range(4)
            ]

    assert asyncio.run(main()) == ["ok", "ok", "token_expired", "token_expired"]


def test_runtime_control_sets_clears_and_counts() -> None:
    injector = _injector("")
    assert [r.status_code for r in _run(injector, 2)] == [200, 200]  # type: ignore[union-attr]
    injector.set("500=1")
    assert [r.status_code for r in _run(injector, 2)] == [500, 500]  # type: ignore[union-attr]
    injector.clear()
    assert [r.status_code for r in _run(injector, 1)] == [200]  # type: ignore[union-attr]
    assert injector.counters == Counter({"5xx": 2})
    injector.reset()
    assert (injector.requests, sum(injector.counters.values())) == (0, 0)


def test_non_http_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope, receive, send) -> None:
        seen.append(scope["type"])

    injector = FaultInjector(app, "drop=1")
    asyncio.run(injector({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]


def test_drop_over_loopback_reaches_the_client_as_a_protocol_error() -> None:
    import uvicorn

    async def main() -> object:
        injector = FaultInjector(_app(), "drop=1")
        config = uvicorn.Config(injector, host="127.0.0.1", port=0, log_level="critical")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve())
        try:
            for _ in range(500):
                if server.started:
                    break
                await asyncio.sleep(0.01)
            port = server.servers[0].sockets[0].getsockname()[1]
            async with httpx2.AsyncClient() as client:
                try:
                    return await client.get(f"http://127.0.0.1:{port}/api/x")
                except httpx2.TransportError as exc:
                    return exc
        finally:
            server.should_exit = True
            await task

    outcome = asyncio.run(main())
    assert isinstance(outcome, httpx2.RemoteProtocolError)
