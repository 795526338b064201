import math

import pytest

from connectors.clock import FakeClock
from connectors.context import CallContext, Deadline, current_context, use_context


def test_deadline_counts_down_on_its_clock():
    clock = FakeClock()
    d = Deadline.after(5, clock)
    assert d.remaining() == 5
    clock.advance(2)
    assert d.remaining() == 3
    clock.advance(3)
    assert d.expired()


def test_with_deadline_keeps_the_earliest():
    clock = FakeClock()
    ctx = CallContext(tenant="t", deadline=Deadline.after(10, clock))
    sooner = ctx.with_deadline(Deadline.after(5, clock))
    later = ctx.with_deadline(Deadline.after(50, clock))
    assert sooner.remaining() == 5
    assert later.remaining() == 10
    assert CallContext(tenant="t").remaining() == math.inf


def test_context_requires_tenant_and_gets_unique_request_ids():
    with pytest.raises(ValueError, match="tenant"):
        CallContext(tenant="")
    assert CallContext(tenant="a").request_id != CallContext(tenant="a").request_id


def test_current_context_is_scoped():
    assert current_context() is None
    ctx = CallContext(tenant="t", actor="alice")
    with use_context(ctx):
        assert current_context() is ctx
    assert current_context() is None
