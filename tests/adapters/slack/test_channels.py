"""Channel name → id directory: pure bookkeeping with a TTL on an injected clock."""

from __future__ import annotations

from connectors.adapters.slack.channels import ChannelDirectory, looks_like_id, normalise
from connectors.clock import FakeClock


def test_ids_pass_through_and_names_are_normalised():
    assert looks_like_id("C00000001")
    assert looks_like_id("G0ABCDEF1")
    assert not looks_like_id("general")
    assert not looks_like_id("C1")
    assert normalise(" #general ") == "general"
    assert ChannelDirectory(FakeClock()).lookup("C00000001") == "C00000001"


def test_a_loaded_listing_answers_until_the_ttl_passes():
    clock = FakeClock()
    directory = ChannelDirectory(clock, ttl=60)
    assert directory.lookup("general") is None
    directory.load([{"id": "C00000001", "name": "general"}, {"id": 5}])
    assert directory.lookup("#general") == "C00000001"
    assert len(directory) == 1
    clock.advance(61)
    assert directory.lookup("general") is None


def test_remembered_names_and_invalidation():
    directory = ChannelDirectory(FakeClock())
    directory.remember("#alerts", "C00000004")
    directory.remember("C00000009", "C00000009")  # ids are not names: ignored
    assert directory.lookup("alerts") == "C00000004"
    assert len(directory) == 1
    directory.invalidate()
    assert directory.lookup("alerts") is None
