"""The hash chain: links, tamper detection, HMAC keys (pure, no database)."""

from __future__ import annotations

import dataclasses
import itertools
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.audit.chain import (
    GENESIS,
    AuditChain,
    ChainedEvent,
    ChainHead,
    UnreadableRow,
    verify_chain,
)
from connectors.clock import FakeClock
from connectors.secrets.secret import Secret

from ._support import make_event

CHAIN = AuditChain()


def build(n: int, *, tenant: str = "acme", chain: AuditChain = CHAIN) -> list[ChainedEvent]:
    clock = FakeClock()
    return chain.extend(GENESIS, 0, [make_event(clock, tenant=tenant, n=i) for i in range(n)])


def head_of(records: list[ChainedEvent], tenant: str = "acme") -> ChainHead:
    if not records:
        return ChainHead(tenant, 0, GENESIS)
    return ChainHead(tenant, records[-1].seq, records[-1].hash)


def kinds(result) -> set[str]:
    return {p.kind for p in result.problems}


def test_an_untouched_chain_verifies():
    records = build(5)
    result = verify_chain("acme", records, chain=CHAIN, head=head_of(records))
    assert result.ok
    assert bool(result)
    assert result.events == 5
    assert result.last_seq == 5
    assert [r.seq for r in records] == [1, 2, 3, 4, 5]
    assert records[0].prev_hash == GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))


def test_an_empty_chain_verifies_with_and_without_a_head():
    assert verify_chain("acme", [], chain=CHAIN, head=None).ok
    assert verify_chain("acme", [], chain=CHAIN, head=ChainHead("acme", 0, GENESIS)).ok


def test_an_edited_row_is_detected():
    records = build(5)
    edited = dataclasses.replace(records[2].event, outcome="failure")
    records[2] = dataclasses.replace(records[2], event=edited)
    result = verify_chain("acme", records, chain=CHAIN, head=head_of(records))
    assert not result.ok
    assert result.first_problem is not None
    assert result.first_problem.kind == "hash_mismatch"
    assert result.first_problem.seq == 3


def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link():
    records = build(5)
    head = head_of(records)
    edited = dataclasses.replace(records[2].event, actor="mallory")
    new_hash = CHAIN.link(records[2].prev_hash, 3, edited)
    records[2] = ChainedEvent(edited, 3, records[2].prev_hash, new_hash)
    result = verify_chain("acme", records, chain=CHAIN, head=head)
    assert "broken_link" in kinds(result)


def test_a_deleted_middle_row_is_detected():
    records = build(5)
    head = head_of(records)
    del records[2]
    result = verify_chain("acme", records, chain=CHAIN, head=head)
    assert kinds(result) == {"gap", "broken_link"}


def test_a_deleted_tail_is_detected_through_the_head():
    records = build(5)
    head = head_of(records)
    result = verify_chain("acme", records[:3], chain=CHAIN, head=head)
    assert kinds(result) == {"truncated"}
    # without the head record the truncation cannot be seen: that is why the head is kept
    assert verify_chain("acme", records[:3], chain=CHAIN, head=None, check_head=False).ok


def test_swapped_rows_are_detected():
    records = build(5)
    head = head_of(records)
    a, b = records[1], records[2]
    records[1] = ChainedEvent(b.event, 2, b.prev_hash, b.hash)
    records[2] = ChainedEvent(a.event, 3, a.prev_hash, a.hash)
    result = verify_chain("acme", records, chain=CHAIN, head=head)
    assert not result.ok
    assert "hash_mismatch" in kinds(result)


def test_a_row_from_another_tenant_is_detected():
    mine, theirs = build(3), build(3, tenant="globex")
    records = [*mine[:2], theirs[2]]
    assert "wrong_tenant" in kinds(verify_chain("acme", records, chain=CHAIN, head=None))


def test_a_missing_or_stale_head_is_reported():
    records = build(3)
    assert kinds(verify_chain("acme", records, chain=CHAIN, head=None)) == {"missing_head"}
    stale = ChainHead("acme", 3, "f" * 64)
    assert kinds(verify_chain("acme", records, chain=CHAIN, head=stale)) == {"head_mismatch"}


def test_an_unreadable_row_is_reported_not_raised():
    records: list = build(3)
    head = head_of(records)
    r = records[1]
    records[1] = UnreadableRow("acme", r.seq, r.prev_hash, r.hash, "ValueError")
    result = verify_chain("acme", records, chain=CHAIN, head=head)
    assert kinds(result) == {"hash_mismatch"}


def test_a_keyed_chain_cannot_be_recomputed_without_the_key():
    keyed = AuditChain(Secret("k" * 32))
    records = build(4, chain=keyed)
    assert verify_chain("acme", records, chain=keyed, head=head_of(records)).ok
    # an attacker without the key edits row 2 and rebuilds the rest with plain SHA-256
    events = [r.event for r in records]
    events[1] = dataclasses.replace(events[1], outcome="failure")
    forged = CHAIN.extend(GENESIS, 0, events)
    assert verify_chain("acme", forged, chain=CHAIN, head=head_of(forged)).ok
    assert not verify_chain("acme", forged, chain=keyed, head=head_of(forged)).ok
    # and a different key does not verify the genuine chain either
    other = AuditChain(Secret("o" * 32))
    assert not verify_chain("acme", records, chain=other, head=head_of(records)).ok


def test_the_chain_key_is_never_shown_and_must_be_long_enough():
    chain = AuditChain(Secret("super-secret-chain-key"))
    assert "super-secret" not in repr(chain)
    assert chain.keyed
    with pytest.raises(ValueError, match="16"):
        AuditChain(Secret("short"))


def test_reported_problems_are_capped_but_counted():
    records = build(150)
    records = [dataclasses.replace(r, hash="0" * 64) for r in records]
    result = verify_chain("acme", records, chain=CHAIN, head=None, check_head=False)
    assert len(result.problems) == 100
    assert result.problem_count > 150


# -- properties -----------------------------------------------------------------------------

tenants = st.sampled_from(["acme", "globex", "initech"])


@st.composite
def writes(draw) -> list[tuple[str, int]]:
    return draw(st.lists(st.tuples(tenants, st.integers(0, 10**6)), min_size=1, max_size=40))


def chains_of(items: list[tuple[str, int]], chain: AuditChain = CHAIN) -> dict:
    clock = FakeClock()
    by_tenant: dict[str, list[ChainedEvent]] = {}
    for tenant, n in items:
        prior = by_tenant.setdefault(tenant, [])
        last_seq, last_hash = (prior[-1].seq, prior[-1].hash) if prior else (0, GENESIS)
        prior.extend(chain.extend(last_hash, last_seq, [make_event(clock, tenant=tenant, n=n)]))
    return by_tenant


@settings(max_examples=150, deadline=None)
@given(writes())
def test_any_sequence_of_writes_across_tenants_verifies(items):
    for tenant, records in chains_of(items).items():
        assert verify_chain(tenant, records, chain=CHAIN, head=head_of(records, tenant)).ok


@settings(max_examples=200, deadline=None)
@given(writes(), st.data())
def test_any_single_row_tampering_is_detected(items, data):
    by_tenant = chains_of(items)
    tenant = data.draw(st.sampled_from(sorted(by_tenant)))
    records = by_tenant[tenant]
    head = head_of(records, tenant)
    i = data.draw(st.integers(0, len(records) - 1))
    mutation = data.draw(st.sampled_from(["edit", "delete", "swap", "hash", "seq", "details"]))
    r = records[i]
    tampered = list(records)
    if mutation == "edit":
        event = dataclasses.replace(r.event, actor=r.event.actor + "x")
        tampered[i] = dataclasses.replace(r, event=event)
    elif mutation == "details":
        event = dataclasses.replace(r.event, details={"n": -1})
        tampered[i] = dataclasses.replace(r, event=event)
    elif mutation == "delete":
        del tampered[i]
    elif mutation == "hash":
        tampered[i] = dataclasses.replace(r, hash="e" * 64)
    elif mutation == "seq":
        tampered[i] = dataclasses.replace(r, seq=r.seq + 7)
    else:  # swap with a neighbour (or with itself when alone: then edit instead)
        if len(records) == 1:
            event = dataclasses.replace(r.event, operation="delete")
            tampered[i] = dataclasses.replace(r, event=event)
        else:
            j = i + 1 if i + 1 < len(records) else i - 1
            a, b = records[i], records[j]
            tampered[i] = ChainedEvent(b.event, a.seq, b.prev_hash, b.hash)
            tampered[j] = ChainedEvent(a.event, b.seq, a.prev_hash, a.hash)
    assert not verify_chain(tenant, tampered, chain=CHAIN, head=head).ok


def test_the_canonical_form_is_sorted_compact_json_of_the_event_and_its_seq():
    event = make_event(status=201, duration_ms=3, details={"b": [1, "x"], "a": None})
    expected = {**event.to_dict(), "seq": 7, "v": 1}
    assert json.loads(AuditChain.canonical(event, 7)) == expected
    assert (
        AuditChain.canonical(event, 7)
        == json.dumps(expected, sort_keys=True, separators=(",", ":")).encode()
    )
