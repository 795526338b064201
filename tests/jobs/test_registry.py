"""Job functions by name, their retry delays and the context they receive."""

import pytest

from connectors.clock import FakeClock
from connectors.errors import ConfigurationError
from connectors.jobs.registry import JobContext, JobRegistry, JobSpec, RetryJob


async def noop(ctx, args):
    return None


def test_registered_functions_are_found_by_name():
    registry = JobRegistry()

    @registry.job("a.b", retry_delays=(1, 2))
    async def fn(ctx, args):
        return None

    spec = registry.get("a.b")
    assert spec is not None
    assert spec.fn is fn
    assert "a.b" in registry
    assert list(registry) == ["a.b"]
    assert registry.get("missing") is None


def test_a_name_cannot_be_taken_twice_or_be_empty_or_have_negative_delays():
    registry = JobRegistry()
    registry.register("x", noop)
    registry.register("x", noop)  # the same function again is fine

    async def other(ctx, args):
        return None

    with pytest.raises(ConfigurationError):
        registry.register("x", other)
    with pytest.raises(ConfigurationError):
        registry.register("", noop)
    with pytest.raises(ConfigurationError):
        registry.register("y", noop, retry_delays=(-1,))


def test_delay_after_follows_the_delays_then_gives_up():
    spec = JobSpec("x", noop, (5.0, 30.0))
    assert [spec.delay_after(n) for n in (1, 2, 3)] == [5.0, 30.0, None]


def test_retry_job_never_has_a_negative_delay():
    assert RetryJob(-3).delay == 0.0


def test_context_services_are_type_checked():
    ctx = JobContext(
        db=None,
        clock=FakeClock(),
        job_id=1,
        name="x",
        attempt=1,
        tenant=None,
        worker="w",
        services={"n": 3},
    )
    assert ctx.service("n", int) == 3
    with pytest.raises(ConfigurationError, match="services"):
        ctx.service("missing", int)
