"""Composite requests (references, allOrNone) and sObject Collections (per-record results)."""

from __future__ import annotations

from ._support import V, bearer, client, make_emulator, run


def _post(emulator, path, payload, method="POST", params=None):
    async def main():
        async with client(emulator) as http:
            headers = await bearer(http)
            return await http.request(
                method, f"{V}{path}", json=payload, params=params, headers=headers
            )

    return run(main)


def test_composite_resolves_references_between_subrequests():
    emulator, _ = make_emulator()
    payload = {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "acct",
                "body": {"Name": "Ref Co"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "ct",
                "body": {"LastName": "L", "AccountId": "@{acct.id}"},
            },
            {
                "method": "GET",
                "url": f"{V}/query?q=SELECT+Id,Account.Name+FROM+Contact+WHERE+Id='@{{ct.id}}'",
                "referenceId": "q",
            },
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Contact/@{{q.records[0].Id}}",
                "referenceId": "upd",
                "body": {"Title": "T"},
            },
        ],
    }
    response = _post(emulator, "/composite", payload)
    assert response.status_code == 200
    results = response.json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [201, 201, 200, 204]
    assert [r["referenceId"] for r in results] == ["acct", "ct", "q", "upd"]
    assert results[2]["body"]["records"][0]["Account"]["Name"] == "Ref Co"
    contact = emulator.record(results[1]["body"]["id"])
    assert contact["Title"] == "T"
    assert contact["AccountId"] == results[0]["body"]["id"]
    assert emulator.api_usage == 1  # the whole composite counts once
    emulator.close()


def test_composite_all_or_none_rolls_back_and_halts_the_rest():
    emulator, _ = make_emulator()
    payload = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "a",
                "body": {"Name": "Kept?"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Contact",
                "referenceId": "b",
                "body": {"FirstName": "no last name"},
            },
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "c",
                "body": {"Name": "Never"},
            },
        ],
    }
    results = _post(emulator, "/composite", payload).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 400, 400]
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert results[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert results[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert emulator.org.store.overlay_size == 1  # only the configured user
    emulator.close()


def test_composite_without_all_or_none_keeps_successes_and_fails_dependents():
    emulator, _ = make_emulator()
    payload = {
        "compositeRequest": [
            {"method": "POST", "url": f"{V}/sobjects/Contact", "referenceId": "bad", "body": {}},
            {
                "method": "POST",
                "url": f"{V}/sobjects/Account",
                "referenceId": "ok",
                "body": {"Name": "Fine"},
            },
            {
                "method": "PATCH",
                "url": f"{V}/sobjects/Contact/@{{bad.id}}",
                "referenceId": "dep",
                "body": {},
            },
        ]
    }
    results = _post(emulator, "/composite", payload).json()["compositeResponse"]
    assert [r["httpStatusCode"] for r in results] == [400, 201, 400]
    assert emulator.record(results[1]["body"]["id"]) is not None
    emulator.close()


def test_composite_refuses_more_than_25_subrequests():
    emulator, _ = make_emulator()
    sub = {"method": "GET", "url": f"{V}/limits", "referenceId": "x"}
    response = _post(emulator, "/composite", {"compositeRequest": [sub] * 26})
    assert response.status_code == 400
    emulator.close()


def test_collection_create_reports_each_record():
    emulator, _ = make_emulator()
    payload = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "One"},
            {"attributes": {"type": "Contact"}, "FirstName": "no last"},
            {"attributes": {"type": "Widget"}, "Name": "x"},
        ],
    }
    results = _post(emulator, "/composite/sobjects", payload).json()
    assert results[0]["success"] is True
    assert results[0]["id"].startswith("001")
    assert results[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [LastName]",
                "fields": ["LastName"],
            }
        ],
    }
    assert results[2]["errors"][0]["statusCode"] == "INVALID_TYPE"
    emulator.close()


def test_collection_all_or_none_rolls_back_the_valid_records():
    emulator, _ = make_emulator()
    payload = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Account"}, "Name": "One"},
            {"attributes": {"type": "Account"}},
        ],
    }
    results = _post(emulator, "/composite/sobjects", payload).json()
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator.org.store.overlay_size == 1
    emulator.close()


def test_collection_update_delete_read_and_upsert():
    emulator, _ = make_emulator()
    a = emulator.insert("Account", {"Name": "A"})
    b = emulator.insert("Account", {"Name": "B"})
    update = _post(
        emulator,
        "/composite/sobjects",
        {
            "records": [
                {"attributes": {"type": "Account"}, "Id": a, "Name": "A2"},
                {"attributes": {"type": "Account"}, "Id": "0015g1000000zzzAAA", "Name": "x"},
            ]
        },
        method="PATCH",
    ).json()
    assert update[0] == {"id": a, "success": True, "errors": []}
    assert update[1]["success"] is False
    read = _post(
        emulator,
        "/composite/sobjects/Account",
        None,
        method="GET",
        params={"ids": f"{a},{b}", "fields": "Name"},
    ).json()
    assert [r["Name"] for r in read] == ["A2", "B"]
    upsert = _post(
        emulator,
        "/composite/sobjects/Account/Account_Number__c",
        {
            "records": [
                {"attributes": {"type": "Account"}, "Account_Number__c": "N-1", "Name": "Up"}
            ]
        },
        method="PATCH",
    ).json()
    assert upsert[0]["created"] is True
    deleted = _post(
        emulator, "/composite/sobjects", None, method="DELETE", params={"ids": f"{a},{b}"}
    ).json()
    assert [d["success"] for d in deleted] == [True, True]
    none = _post(emulator, "/composite/sobjects", None, method="DELETE")
    assert none.json() == [
        {"message": "At least 1 Id is required.", "errorCode": "REQUIRED_FIELD_MISSING"}
    ]
    too_many = _post(
        emulator,
        "/composite/sobjects",
        {"records": [{"attributes": {"type": "Account"}, "Name": "x"}] * 201},
    )
    assert too_many.status_code == 400
    emulator.close()
