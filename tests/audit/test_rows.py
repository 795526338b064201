"""The fast write path of ``_rows``: byte-identical hashed form, identical rows and links."""

from __future__ import annotations

import enum
import hashlib
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.audit._rows import ROW_COLUMNS, canonical_bytes, chain_rows, row_values
from connectors.audit.chain import GENESIS, AuditChain, verify_chain
from connectors.audit.events import AuditEvent
from connectors.secrets.secret import Secret

_text = st.text(max_size=20)
_opt_text = st.none() | _text
_opt_int = st.none() | st.integers(min_value=-(2**70), max_value=2**70)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)


@st.composite
def _events(draw: st.DrawFn) -> AuditEvent:
    return AuditEvent(
        id=draw(st.text("0123456789abcdef", min_size=32, max_size=32)),
        timestamp=draw(st.datetimes(timezones=st.just(UTC))),
        tenant=draw(st.text(min_size=1, max_size=20)),
        actor=draw(st.text(min_size=1, max_size=20)),
        operation=draw(st.text(min_size=1, max_size=20)),
        outcome=draw(st.sampled_from(["success", "failure", "denied"])),
        kind=draw(st.from_regex(r"[a-z][a-z0-9_.]{0,10}", fullmatch=True)),
        connector=draw(_opt_text),
        connector_version=draw(_opt_text),
        target=draw(_opt_text),
        error_code=draw(_opt_text),
        status=draw(_opt_int),
        duration_ms=draw(st.none() | st.floats(allow_nan=False, allow_infinity=False)),
        attempts=draw(_opt_int),
        request_id=draw(_opt_text),
        credential_name=draw(_opt_text),
        credential_version=draw(_opt_int),
        details=draw(st.dictionaries(_text, _json, max_size=4)),
    )


@settings(max_examples=300, deadline=None)
@given(event=_events(), seq=st.integers(min_value=1, max_value=2**62))
def test_canonical_bytes_equal_the_chains_canonical_form(event, seq):
    assert canonical_bytes(event, seq) == AuditChain.canonical(event, seq)


class _Status(enum.IntEnum):
    CREATED = 201


def test_an_int_enum_is_hashed_as_its_number_like_json_does():
    event = _fixed_event(status=_Status.CREATED)
    assert b'"status":201,' in canonical_bytes(event, 1)
    assert canonical_bytes(event, 1) == AuditChain.canonical(event, 1)


@settings(max_examples=50, deadline=None)
@given(events=st.lists(_events(), min_size=1, max_size=5), keyed=st.booleans())
def test_chain_rows_match_extend_and_row_values(events, keyed):
    chain = AuditChain(Secret("0123456789abcdef0123")) if keyed else AuditChain()
    rows, last_seq, last_hash = chain_rows(chain, 7, "f" * 64, events)
    expected = chain.extend("f" * 64, 7, events)
    assert rows == [row_values(c) for c in expected]
    assert (last_seq, last_hash) == (expected[-1].seq, expected[-1].hash)


def _fixed_event(**fields: object) -> AuditEvent:
    values: dict[str, object] = {
        "id": "018f4a2b3c4d" + "0" * 20,
        "timestamp": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
        "tenant": "acme",
        "actor": "alice@acme.io",
        "operation": "create",
        "outcome": "success",
        "connector": "salesforce",
        "connector_version": "1.0.0",
        "target": "Lead/ü",
        "status": 201,
        "duration_ms": 12.5,
        "attempts": 1,
        "details": {"sobject": "Lead", "n": [1, 2.5, None, True]},
    }
    values.update(fields)
    return AuditEvent(**values)  # type: ignore[arg-type]


#: The hashed bytes and link of ``_fixed_event()`` at seq 1, as written before the fast path
#: existed: a chain stored by an earlier release must still verify.
_GOLDEN_PAYLOAD = (
    b'{"actor":"alice@acme.io","attempts":1,"connector":"salesforce","connector_version":"1.0.0",'
    b'"credential_name":null,"credential_version":null,'
    b'"details":{"n":[1,2.5,null,true],"sobject":"Lead"},"duration_ms":12.5,"error_code":null,'
    b'"id":"018f4a2b3c4d00000000000000000000","kind":"operation","operation":"create",'
    b'"outcome":"success","request_id":null,"seq":1,"status":201,"target":"Lead/\\u00fc",'
    b'"tenant":"acme","timestamp":"2024-05-06T07:08:09.123456Z","v":1}'
)
_GOLDEN_HASH = hashlib.sha256(GENESIS.encode() + _GOLDEN_PAYLOAD).hexdigest()


def test_the_fast_path_reproduces_a_chain_written_by_the_old_path():
    event = _fixed_event()
    assert canonical_bytes(event, 1) == _GOLDEN_PAYLOAD
    rows, last_seq, last_hash = chain_rows(AuditChain(), 0, GENESIS, [event])
    assert (last_seq, last_hash) == (1, _GOLDEN_HASH)
    row = dict(zip(ROW_COLUMNS, rows[0], strict=True))
    assert row["hash"] == _GOLDEN_HASH
    assert row["prev_hash"] == GENESIS


def test_an_old_chain_still_verifies_after_the_change():
    events = [_fixed_event(id=f"018f4a2b3c4d{i:020x}", target=f"Lead/{i}") for i in range(3)]
    # Stored as the old write path did: ChainedEvent links from AuditChain.extend.
    old = AuditChain().extend(GENESIS, 0, events)
    new_rows, _, _ = chain_rows(AuditChain(), 0, GENESIS, events)
    assert [r[ROW_COLUMNS.index("hash")] for r in new_rows] == [c.hash for c in old]
    assert verify_chain("acme", old, chain=AuditChain(), head=None, check_head=False).ok
