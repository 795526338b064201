"""sObject REST resources: create, read, update, delete, upsert, validation errors."""

from __future__ import annotations

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec

from ._support import V, bearer, client, make_emulator, run


def _calls(emulator, body):
    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            return await body(http, headers)

    return run(main)


def test_create_read_update_delete_status_codes():
    emulator, _ = make_emulator()

    async def body(http, headers):
        created = await http.post(
            f"{V}/sobjects/Lead", json={"LastName": "Smith", "Company": "Ex"}, headers=headers
        )
        record_id = created.json()["id"]
        read = await http.get(f"{V}/sobjects/Lead/{record_id}", headers=headers)
        some = await http.get(
            f"{V}/sobjects/Lead/{record_id}", params={"fields": "Company,Status"}, headers=headers
        )
        updated = await http.patch(
            f"{V}/sobjects/Lead/{record_id}", json={"Company": "New"}, headers=headers
        )
        after = await http.get(
            f"{V}/sobjects/Lead/{record_id}", params={"fields": "Company"}, headers=headers
        )
        deleted = await http.delete(f"{V}/sobjects/Lead/{record_id}", headers=headers)
        gone = await http.get(f"{V}/sobjects/Lead/{record_id}", headers=headers)
        again = await http.delete(f"{V}/sobjects/Lead/{record_id}", headers=headers)
        return created, read, some, updated, after, deleted, gone, again

    created, read, some, updated, after, deleted, gone, again = _calls(emulator, body)
    assert created.status_code == 201
    record_id = created.json()["id"]
    assert len(record_id) == 18
    assert record_id.startswith("00Q")
    assert created.headers["location"] == f"{V}/sobjects/Lead/{record_id}"
    assert read.json()["Status"] == "Open - Not Contacted"  # picklist default
    assert read.json()["Name"] == "Smith"
    assert read.json()["attributes"] == {"type": "Lead", "url": f"{V}/sobjects/Lead/{record_id}"}
    assert set(some.json()) == {"attributes", "Company", "Status"}
    assert updated.status_code == 204
    assert after.json()["Company"] == "New"
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert gone.json() == [
        {"message": "The requested resource does not exist", "errorCode": "NOT_FOUND"}
    ]
    assert again.status_code == 404
    assert again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    emulator.close()


def test_ids_have_the_right_key_prefix_for_each_object():
    emulator, _ = make_emulator()
    account = emulator.insert("Account", {"Name": "A"})
    contact = emulator.insert("Contact", {"LastName": "C", "AccountId": account})
    opp = emulator.insert(
        "Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": "2024-01-01"}
    )
    invoice = emulator.insert("Invoice__c", {"Name": "I-1"})
    assert [i[:3] for i in (account, contact, opp, invoice, emulator.admin_user_id)] == [
        "001",
        "003",
        "006",
        "a01",
        "005",
    ]
    emulator.close()


def test_validation_errors_have_salesforce_codes():
    emulator, _ = make_emulator(SalesforceEmulatorConfig(seed=SeedSpec(accounts=1)))

    async def body(http, headers):
        out = {}
        cases = {
            "missing": {"FirstName": "x"},
            "unknown": {"LastName": "x", "Bogus__c": 1},
            "readonly": {"LastName": "x", "Name": "Full"},
            "email": {"LastName": "x", "Email": "not-an-email"},
            "long": {"LastName": "x" * 81},
            "wrong_ref": {"LastName": "x", "AccountId": emulator.admin_user_id},
            "no_ref": {"LastName": "x", "AccountId": "0015g1000000zzzAAA"},
            "bad_date": {"LastName": "x", "Birthdate": "yesterday"},
        }
        for key, payload in cases.items():
            response = await http.post(f"{V}/sobjects/Contact", json=payload, headers=headers)
            out[key] = (response.status_code, response.json()[0])
        return out

    out = _calls(emulator, body)
    assert out["missing"] == (
        400,
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        },
    )
    assert out["unknown"] == (
        400,
        {
            "message": "No such column 'Bogus__c' on sobject of type Contact",
            "errorCode": "INVALID_FIELD",
        },
    )
    assert out["readonly"][1]["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert out["email"][1]["errorCode"] == "INVALID_EMAIL_ADDRESS"
    assert out["long"][1]["errorCode"] == "STRING_TOO_LONG"
    assert out["wrong_ref"][1]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert out["no_ref"][1]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert out["bad_date"][1]["errorCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert {status for status, _ in out.values()} == {400}
    emulator.close()


def test_custom_validation_rules_fail_writes_on_demand():
    emulator, _ = make_emulator()
    emulator.add_validation_rule(
        "Opportunity",
        lambda r: (r.get("Amount") or 0) < 0,
        "Amount must not be negative",
        field="Amount",
    )

    async def body(http, headers):
        return await http.post(
            f"{V}/sobjects/Opportunity",
            json={"Name": "N", "StageName": "Prospecting", "CloseDate": "2024-02-01", "Amount": -5},
            headers=headers,
        )

    response = _calls(emulator, body)
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "Amount must not be negative",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Amount"],
        }
    ]
    emulator.close()


def test_upsert_creates_updates_and_reports_ambiguity():
    emulator, _ = make_emulator(SalesforceEmulatorConfig(seed=SeedSpec(contacts=10)))

    async def body(http, headers):
        url = f"{V}/sobjects/Contact/External_Id__c"
        created = await http.patch(f"{url}/NEW-1", json={"LastName": "New"}, headers=headers)
        updated = await http.patch(f"{url}/new-1", json={"LastName": "Renamed"}, headers=headers)
        seeded = await http.patch(f"{url}/CON-0000003", json={"Title": "Boss"}, headers=headers)
        only = await http.patch(
            f"{url}/NOPE?updateOnly=true", json={"LastName": "x"}, headers=headers
        )
        emulator.insert("Contact", {"LastName": "Dup", "External_Id__c": "CON-0000004"})
        ambiguous = await http.patch(f"{url}/CON-0000004", json={"LastName": "x"}, headers=headers)
        by_ext = await http.get(f"{url}/CON-0000003", headers=headers)
        not_ext = await http.patch(f"{V}/sobjects/Contact/LastName/x", json={}, headers=headers)
        return created, updated, seeded, only, ambiguous, by_ext, not_ext

    created, updated, seeded, only, ambiguous, by_ext, not_ext = _calls(emulator, body)
    assert created.status_code == 201
    assert created.json()["created"] is True
    assert updated.status_code == 200
    assert updated.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    assert emulator.record(created.json()["id"])["LastName"] == "Renamed"
    assert seeded.status_code == 200
    assert by_ext.json()["Title"] == "Boss"
    assert only.status_code == 404
    assert ambiguous.status_code == 300
    assert len(ambiguous.json()) == 2
    assert all(u.startswith(f"{V}/sobjects/Contact/003") for u in ambiguous.json())
    assert not_ext.status_code == 404
    assert (
        not_ext.json()[0]["message"]
        == "Provided external ID field does not exist or is not accessible: LastName"
    )
    emulator.close()


def test_basic_info_and_unknown_objects():
    emulator, _ = make_emulator()

    async def body(http, headers):
        info = await http.get(f"{V}/sobjects/Invoice__c", headers=headers)
        unknown = await http.post(f"{V}/sobjects/Widget", json={}, headers=headers)
        return info, unknown

    info, unknown = _calls(emulator, body)
    assert info.json()["objectDescribe"]["keyPrefix"] == "a01"
    assert info.json()["objectDescribe"]["custom"] is True
    assert unknown.status_code == 404
    emulator.close()


def test_describe_reports_external_ids_and_child_relationships():
    emulator, _ = make_emulator()

    async def body(http, headers):
        contact = (await http.get(f"{V}/sobjects/Contact/describe", headers=headers)).json()
        account = (await http.get(f"{V}/sobjects/Account/describe", headers=headers)).json()
        return contact, account

    contact, account = _calls(emulator, body)
    fields = {f["name"]: f for f in contact["fields"]}
    assert fields["External_Id__c"]["externalId"] is True
    assert fields["AccountId"]["referenceTo"] == ["Account"]
    assert fields["AccountId"]["relationshipName"] == "Account"
    assert fields["LastName"]["nillable"] is False
    children = {c["childSObject"]: c["relationshipName"] for c in account["childRelationships"]}
    assert children["Contact"] == "Contacts"
    assert children["Invoice__c"] == "Invoices__r"
    emulator.close()
