"""The record store: seeded base plus overlay, counts, lookups, snapshots."""

from __future__ import annotations

from datetime import UTC, datetime

from connectors.testing.salesforce.schema import default_schema
from connectors.testing.salesforce.seed import SeedData, SeedSpec
from connectors.testing.salesforce.store import RecordStore

NOW = datetime(2024, 6, 1, tzinfo=UTC)
SCHEMA = default_schema()
LEAD = SCHEMA.get("Lead")
assert LEAD is not None


def _store(leads: int = 5) -> RecordStore:
    return RecordStore(SCHEMA, SeedData(SCHEMA, SeedSpec(leads=leads), anchor=NOW, owner_id="u"))


def test_overlay_updates_deletes_and_inserts_combine_with_the_seed():
    store = _store()
    seeded = [r["Id"] for r in store.iter_records(LEAD, include_deleted=False)]
    store.update(LEAD, str(seeded[1]), {"Company": "Changed"}, user_id="u", now=NOW)
    store.delete(LEAD, str(seeded[2]), now=NOW)
    store.delete(LEAD, str(seeded[3]), now=NOW, hard=True)
    new = store.insert(LEAD, {"LastName": "N", "Company": "C"}, user_id="u", now=NOW)
    live = list(store.iter_records(LEAD, include_deleted=False))
    every = list(store.iter_records(LEAD, include_deleted=True))
    assert [r["Id"] for r in live] == [seeded[0], seeded[1], seeded[4], new["Id"]]
    assert live[1]["Company"] == "Changed"
    assert len(every) == 5
    assert store.count(LEAD, include_deleted=False) == 4
    assert store.count(LEAD, include_deleted=True) == 5
    assert store.get(str(seeded[2])) is None
    assert store.locate(str(seeded[2])) is not None
    assert store.locate(str(seeded[3])) is None
    assert store.overlay_size == 4


def test_external_id_lookup_sees_seed_and_overlay():
    store = _store()
    assert len(store.find_by_external_id(LEAD, "External_Id__c", "LEAD-0000001")) == 1
    store.insert(
        LEAD,
        {"LastName": "N", "Company": "C", "External_Id__c": "lead-0000001"},
        user_id="u",
        now=NOW,
    )
    assert len(store.find_by_external_id(LEAD, "External_Id__c", "LEAD-0000001")) == 2


def test_snapshot_restore_undoes_writes():
    store = _store()
    snapshot = store.snapshot()
    store.insert(LEAD, {"LastName": "N", "Company": "C"}, user_id="u", now=NOW)
    first = next(iter(store.iter_records(LEAD, include_deleted=False)))
    store.delete(LEAD, str(first["Id"]), now=NOW)
    store.restore(snapshot)
    assert store.overlay_size == 0
    assert store.count(LEAD, include_deleted=False) == 5
