"""The process-wide test switch."""

from __future__ import annotations

from connectors.resilience import is_testing, set_testing


def test_set_testing_toggles_and_restores_as_a_context_manager():
    before = is_testing()
    with set_testing(not before):
        assert is_testing() is (not before)
        with set_testing(before):
            assert is_testing() is before
        assert is_testing() is (not before)
    assert is_testing() is before


def test_set_testing_without_a_block_stays_set():
    before = is_testing()
    try:
        set_testing(True)
        assert is_testing()
        set_testing(False)
        assert not is_testing()
    finally:
        set_testing(before)
