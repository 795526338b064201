"""AuditEvent: validation, no secrets, redaction, serialisation."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


_texts = (
    st.none()
    | st.text(max_size=5)
    | st.text(min_size=195, max_size=210)
    | st.just(Secret("s-canary"))
)
_ints = st.none() | st.integers(-5, 500) | st.booleans() | st.just(2.0)
_floats = (
    st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 9) | st.booleans()
)


@settings(max_examples=400, deadline=None)
@given(
    tenant=_texts,
    actor=_texts,
    operation=_texts,
    connector=_texts,
    connector_version=st.none() | st.text(max_size=3) | st.text(min_size=64, max_size=66),
    target=_texts,
    error_code=_texts,
    request_id=_texts,
    credential_name=_texts,
    status=_ints,
    attempts=_ints,
    credential_version=_ints,
    duration_ms=_floats,
    outcome=st.sampled_from(["success", "failure", "denied", "maybe"]),
    kind=st.sampled_from(["operation", "credential.put", "custom.kind", "Bad Kind"]),
    details=st.sampled_from([None, {}, {"n": 1}]),
)
def test_new_accepts_and_refuses_exactly_what_the_constructor_does(**fields):
    """new()'s slot-filling path for plain events must agree with the dataclass constructor."""
    clock = FakeClock(wall_start=1_700_000_000.5)
    now = clock.time()
    target = fields["target"]
    if isinstance(target, str) and len(target) > 512:
        fields["target"] = target[:511] + "…"
    details = fields.pop("details")
    try:
        expected: AuditEvent | type[Exception] = AuditEvent(
            id="0" * 32,
            timestamp=datetime.fromtimestamp(now, UTC),
            details=details or {},
            **fields,
        )
    except (TypeError, ValueError) as exc:
        expected = type(exc)
    try:
        made: AuditEvent | type[Exception] = AuditEvent.new(clock=clock, details=details, **fields)
    except (TypeError, ValueError) as exc:
        made = type(exc)
    if isinstance(expected, AuditEvent):
        assert isinstance(made, AuditEvent)
        assert dataclasses.replace(made, id="0" * 32) == expected
        assert made.details_json() == expected.details_json()
        assert type(made.duration_ms) is type(expected.duration_ms)
        assert made.timestamp.tzinfo is UTC
    else:
        assert made is expected


def test_new_takes_the_moment_an_event_happened_or_else_the_clock():
    clock = FakeClock()
    fields = {"tenant": "acme", "actor": "a", "operation": "op", "outcome": "success"}
    then = clock.time() - 30.0
    assert AuditEvent.new(at=then, **fields).timestamp.timestamp() == pytest.approx(then)
    assert AuditEvent.new(clock=clock, at=then, **fields).timestamp.timestamp() == pytest.approx(
        then
    )
    assert AuditEvent.new(clock=clock, **fields).timestamp.timestamp() == pytest.approx(
        clock.time()
    )
    with pytest.raises(TypeError, match="needs a clock or the time"):
        AuditEvent.new(**fields)
