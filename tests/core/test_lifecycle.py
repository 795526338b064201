import pytest

from connectors.errors import LifecycleError
from connectors.lifecycle import Lifecycle, State


def test_normal_path():
    lc = Lifecycle("x")
    for to in (State.CONNECTING, State.CONNECTED, State.CLOSING, State.CLOSED):
        lc.move(to)
    assert lc.state is State.CLOSED


def test_closed_is_final_and_says_so():
    lc = Lifecycle("x")
    lc.move(State.CLOSED)
    with pytest.raises(LifecycleError, match="closed connector cannot be reused"):
        lc.move(State.CONNECTING)


def test_failed_connect_can_be_retried():
    lc = Lifecycle("x")
    lc.move(State.CONNECTING)
    lc.move(State.FAILED)
    lc.move(State.CONNECTING)
    lc.move(State.CONNECTED)


def test_operations_need_connected():
    lc = Lifecycle("x")
    with pytest.raises(LifecycleError, match="needs a connected connector"):
        lc.require_connected("query")
