"""AuditEvent: validation, no secrets, redaction, serialisation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.audit.events import AuditEvent, from_timestamp_us, new_event_id, timestamp_us
from connectors.clock import FakeClock
from connectors.secrets.secret import Secret

from ._support import make_event


def test_new_stamps_utc_time_from_the_injected_clock():
    clock = FakeClock(wall_start=1_700_000_000.25)
    event = make_event(clock)
    assert event.timestamp == datetime.fromtimestamp(1_700_000_000.25, UTC)
    assert event.timestamp.tzinfo is UTC
    assert len(event.id) == 32


def test_ids_sort_by_creation_time():
    ids = [new_event_id(t) for t in (1.0, 2.0, 1000.0, 1_700_000_000.0)]
    assert ids == sorted(ids)


def test_a_secret_in_details_is_refused_even_when_nested():
    secret = Secret("hunter2-password")
    for details in ({"token": secret}, {"a": [1, {"b": secret}]}, {"x": (secret,)}):
        with pytest.raises(TypeError, match="Secret"):
            make_event(details=details)


def test_a_secret_in_a_field_is_refused():
    with pytest.raises(TypeError, match="Secret"):
        make_event(target=Secret("hunter2-password"))
    with pytest.raises(TypeError, match="Secret"):
        make_event(credential_name=Secret("hunter2-password"))


def test_the_error_about_a_secret_does_not_show_its_value():
    with pytest.raises(TypeError) as info:
        make_event(details={"k": Secret("hunter2-password")})
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize("bad", [object(), {1, 2}, b"bytes", datetime.now(UTC)])
def test_non_json_details_are_refused(bad):
    with pytest.raises(TypeError):
        make_event(details={"v": bad})


def test_non_finite_numbers_are_refused():
    with pytest.raises(ValueError, match="finite"):
        make_event(details={"v": float("nan")})
    with pytest.raises(ValueError, match="finite"):
        make_event(duration_ms=float("inf"))


def test_details_keys_must_be_strings():
    with pytest.raises(TypeError, match="keys"):
        make_event(details={1: "x"})


def test_oversized_details_are_refused():
    with pytest.raises(ValueError, match="bytes"):
        make_event(details={"blob": "x" * 10_000})


@pytest.mark.parametrize(
    ("field", "value"),
    [("outcome", "maybe"), ("kind", "Bad Kind"), ("tenant", ""), ("actor", ""), ("status", "200")],
)
def test_invalid_fields_are_refused(field, value):
    with pytest.raises((ValueError, TypeError)):
        make_event(**{field: value})


def test_details_are_frozen():
    event = make_event(details={"list": [1, 2], "map": {"a": 1}})
    assert event.details["list"] == (1, 2)
    with pytest.raises(TypeError):
        event.details["new"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        event.details["map"]["b"] = 2  # type: ignore[index]


def test_redacted_runs_the_hook_over_every_details_string():
    event = make_event(details={"msg": "token=abc", "nested": ["token=abc", 3], "n": 1})
    clean = event.redacted(lambda s: s.replace("abc", "***"))
    assert clean.details["msg"] == "token=***"
    assert clean.details["nested"] == ("token=***", 3)
    assert clean.details["n"] == 1
    assert clean.id == event.id
    assert clean.target == event.target


def test_dict_round_trip_is_exact():
    event = make_event(
        status=201, duration_ms=12, attempts=2, credential_version=3, details={"a": [1.5, None]}
    )
    again = AuditEvent.from_dict(event.to_dict())
    assert again == event
    assert again.details_json() == event.details_json()


def test_an_integer_duration_becomes_a_float_so_hashes_survive_storage():
    assert make_event(duration_ms=12).duration_ms == 12.0
    assert isinstance(make_event(duration_ms=12).duration_ms, float)


def test_timestamps_must_be_aware_and_are_normalised_to_utc():
    event = make_event()
    with pytest.raises(TypeError):
        AuditEvent(**{**_fields(event), "timestamp": datetime(2024, 1, 1)})
    plus2 = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    shifted = AuditEvent(**{**_fields(event), "timestamp": plus2})
    assert shifted.timestamp == datetime(2024, 1, 1, 10, tzinfo=UTC)
    assert shifted.timestamp.utcoffset() == timedelta(0)


def test_microsecond_timestamps_convert_exactly():
    ts = datetime(2031, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    assert from_timestamp_us(timestamp_us(ts)) == ts


def test_an_overlong_target_is_shortened_by_new():
    event = make_event(target="x" * 2000)
    assert event.target is not None
    assert len(event.target) == 512


def _fields(event: AuditEvent) -> dict[str, object]:
    return {f.name: getattr(event, f.name) for f in dataclasses.fields(event) if f.init}
