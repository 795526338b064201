"""Seed data is deterministic, lazy and consistent with ids and external ids."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from connectors.testing.salesforce.schema import default_schema
from connectors.testing.salesforce.seed import SeedData, SeedSpec, below, pick

ANCHOR = datetime(2024, 6, 1, tzinfo=UTC)


def _seed(**counts: int) -> SeedData:
    return SeedData(
        default_schema(), SeedSpec(**counts), anchor=ANCHOR, owner_id="0055g1000000001AAA"
    )


def test_record_i_is_a_pure_function_of_seed_type_and_index():
    a = _seed(seed=7, contacts=1000, accounts=10)
    b = _seed(seed=7, contacts=1000, accounts=10)
    assert a.record("Contact", 999) == b.record("Contact", 999)
    assert a.record("Contact", 5) == a.record("Contact", 5)
    assert (
        _seed(seed=8, contacts=1000).record("Contact", 5)["Email"]
        != a.record("Contact", 5)["Email"]
    )


def test_seeded_records_have_required_fields_and_valid_references():
    data = _seed(accounts=3, contacts=10, opportunities=4, leads=2, users=2, invoices=2)
    schema = default_schema()
    for name, count in (
        ("Account", 3),
        ("Contact", 10),
        ("Opportunity", 4),
        ("Lead", 2),
        ("User", 2),
        ("Invoice__c", 2),
    ):
        sobject = schema.get(name)
        assert sobject is not None
        for i in range(count):
            record = data.record(name, i)
            assert record["Id"] == data.id_for(name, i)
            assert all(record.get(f.name) not in (None, "") for f in sobject.required_fields)
            assert set(record) <= {f.name for f in sobject.fields}
            assert record["CreatedDate"] <= ANCHOR
    contact = data.record("Contact", 4)
    assert contact["AccountId"] == data.id_for("Account", 4 % 3)
    assert contact["OwnerId"] == data.id_for("User", 0)


def test_external_ids_map_back_to_their_index():
    data = _seed(contacts=50, accounts=5)
    assert data.record("Contact", 42)["External_Id__c"] == "CON-0000042"
    assert data.index_for_external_id("Contact", "External_Id__c", "con-0000042") == 42
    assert data.index_for_external_id("Contact", "External_Id__c", "CON-0000050") is None
    assert data.index_for_external_id("Contact", "Email", "CON-0000001") is None
    assert data.index_for_external_id("Account", "Account_Number__c", "ACC-0000003") == 3


def test_a_million_record_org_costs_nothing_until_read():
    data = _seed(contacts=1_000_000)
    assert data.count("Contact") == 1_000_000
    assert data.record("Contact", 999_999)["Id"] == data.id_for("Contact", 999_999)


@given(st.integers(0, 2**64), st.integers(1, 2**70))
def test_below_draws_what_randrange_draws(seed, n):
    ours, reference = random.Random(seed), random.Random(seed)
    assert [below(ours.getrandbits, n) for _ in range(3)] == [
        reference.randrange(n) for _ in range(3)
    ]


@given(st.integers(0, 2**64), st.lists(st.integers(), min_size=1, max_size=40))
def test_pick_draws_what_choice_draws(seed, items):
    ours, reference = random.Random(seed), random.Random(seed)
    assert [pick(ours.getrandbits, items) for _ in range(3)] == [
        reference.choice(items) for _ in range(3)
    ]


def test_seeded_values_stay_what_earlier_versions_generated():
    # Pinned from the emulator before its draws were made faster: a seed means the same org.
    data = _seed(accounts=3, contacts=10, opportunities=4)
    contact = data.record("Contact", 7)
    assert (contact["Name"], contact["Email"], contact["Phone"], contact["Title"]) == (
        "Hana Smith",
        "hana.smith.7@example.com",
        "+1 555 9856",
        "CEO",
    )
    assert contact["CreatedDate"] == datetime(2024, 4, 13, 1, 53, 44, tzinfo=UTC)
    assert contact["LastModifiedDate"] == datetime(2024, 5, 15, 8, 25, 16, tzinfo=UTC)
    assert (contact["Birthdate"].isoformat(), contact["LeadSource"]) == (
        "1989-05-07",
        "Partner Referral",
    )
    account = data.record("Account", 7)
    assert (account["Name"], account["AnnualRevenue"], account["NumberOfEmployees"]) == (
        "Umbrella Partners 7",
        62098000.0,
        1654,
    )
    deal = data.record("Opportunity", 7)
    assert (deal["StageName"], deal["Amount"], deal["Probability"]) == (
        "Qualification",
        287700.0,
        20.0,
    )
    assert deal["CloseDate"].isoformat() == "2024-05-15"
