"""The emulator's bodies have the keys and JSON types of real Salesforce bodies (restforce)."""

from __future__ import annotations

from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

from ._support import (
    V,
    assert_same_shape,
    bearer,
    client,
    make_emulator,
    reference,
    run,
    shape_differences,
)

# Newer token responses carry these two keys; the 2010-era restforce fixture predates them.
TOKEN_EXTRAS = ("token_type", "scope")


def _strip_record_fields(body: object) -> object:
    """A query page with only ``attributes`` left in each record (fields depend on the query)."""
    assert isinstance(body, dict)
    records = [{"attributes": r["attributes"]} for r in body["records"]]
    return {**body, "records": records}


def test_shape_comparator_reports_missing_keys_and_type_changes():
    problems = shape_differences(
        {"a": 1, "b": [{"c": "x"}]}, {"a": "1", "b": [{"d": 1}], "e": None}
    )
    assert "$.a: number where the reference has string" in problems
    assert "$: missing key 'e'" in problems
    assert "$.b[0]: missing key 'd'" in problems
    assert "$.b[0]: unexpected key 'c'" in problems


def test_auth_success_and_error_bodies_match_the_reference():
    emulator, _ = make_emulator()

    async def main() -> None:
        async with client(emulator) as http:
            ok = await http.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": DEFAULT_APP.consumer_key,
                    "client_secret": DEFAULT_APP.consumer_secret,
                    "username": DEFAULT_USER.username,
                    "password": DEFAULT_USER.password,
                },
            )
            bad = await http.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "password",
                    "client_id": DEFAULT_APP.consumer_key,
                    "client_secret": DEFAULT_APP.consumer_secret,
                    "username": DEFAULT_USER.username,
                    "password": "wrong",
                },
            )
            refresh_bad = await http.post(
                "/services/oauth2/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": "nope",
                    "client_id": DEFAULT_APP.consumer_key,
                },
            )
        assert ok.status_code == 200
        assert_same_shape(ok.json(), reference("auth_success_response.json"), extra=TOKEN_EXTRAS)
        assert "expires_in" not in ok.json()
        assert bad.status_code == 400
        assert_same_shape(bad.json(), reference("auth_error_response.json"))
        assert refresh_bad.status_code == 400
        assert refresh_bad.json() == reference("refresh_error_response.json")

    run(main)
    emulator.close()


def test_expired_session_body_is_the_reference_body():
    emulator, _ = make_emulator()

    async def main() -> None:
        async with client(emulator) as http:
            headers = await bearer(http)
            emulator.expire_all_sessions()
            response = await http.get(f"{V}/sobjects", headers=headers)
        assert response.status_code == 401
        assert response.json() == reference("expired_session_response.json")

    run(main)
    emulator.close()


def test_query_pages_and_errors_match_the_reference():
    emulator, _ = make_emulator(SalesforceEmulatorConfig(seed=SeedSpec(accounts=450)))

    async def main() -> None:
        async with client(emulator) as http:
            headers = {**await bearer(http), "Sforce-Query-Options": "batchSize=200"}
            first = await http.get(
                f"{V}/query", params={"q": "SELECT Id, Name FROM Account"}, headers=headers
            )
            url = first.json()["nextRecordsUrl"]
            second = await http.get(url, headers=headers)
            last = await http.get(second.json()["nextRecordsUrl"], headers=headers)
            empty = await http.get(
                f"{V}/query",
                params={"q": "SELECT Id FROM Account WHERE Name = 'none'"},
                headers=headers,
            )
            error = await http.get(
                f"{V}/query", params={"q": "SELECT Nope FROM Account"}, headers=headers
            )
        assert_same_shape(
            _strip_record_fields(first.json()),
            _strip_record_fields(reference("query_paginated_first_page_response.json")),
        )
        assert last.json()["done"] is True
        assert_same_shape(
            _strip_record_fields(last.json()),
            _strip_record_fields(reference("query_paginated_last_page_response.json")),
        )
        assert_same_shape(empty.json(), reference("query_empty_response.json"))
        assert error.status_code == 400
        assert_same_shape(error.json(), reference("query_error_response.json"))
        assert error.json()[0]["errorCode"] == "INVALID_FIELD"

    run(main)
    emulator.close()


def test_create_upsert_and_write_error_bodies_match_the_reference():
    emulator, _ = make_emulator()

    async def main() -> None:
        async with client(emulator) as http:
            headers = await bearer(http)
            created = await http.post(
                f"{V}/sobjects/Contact", json={"LastName": "Shape"}, headers=headers
            )
            write_error = await http.post(
                f"{V}/sobjects/Contact", json={"LastName": "x", "foo": 1}, headers=headers
            )
            # v45.0: before upserts reported "created" (the restforce fixtures are that old).
            old = "/services/data/v45.0/sobjects/Contact/External_Id__c"
            upsert_new = await http.patch(f"{old}/E-1", json={"LastName": "A"}, headers=headers)
            upsert_again = await http.patch(f"{old}/E-1", json={"LastName": "B"}, headers=headers)
            modern = await http.patch(
                f"{V}/sobjects/Contact/External_Id__c/E-2", json={"LastName": "C"}, headers=headers
            )
            emulator.insert("Contact", {"LastName": "D1", "External_Id__c": "DUP"})
            emulator.insert("Contact", {"LastName": "D2", "External_Id__c": "DUP"})
            multiple = await http.patch(
                f"{V}/sobjects/Contact/External_Id__c/DUP", json={"LastName": "E"}, headers=headers
            )
            bad_field = await http.patch(f"{V}/sobjects/Contact/Namez/x", json={}, headers=headers)
            missing = await http.get(f"{V}/sobjects/Nope/describe", headers=headers)
        assert created.status_code == 201
        assert_same_shape(created.json(), reference("create_success_response.json"))
        assert write_error.status_code == 400
        assert_same_shape(write_error.json(), reference("write_error_response.json"))
        assert upsert_new.status_code == 201
        assert_same_shape(upsert_new.json(), reference("upsert_created_success_response.json"))
        assert upsert_again.status_code == 204
        assert upsert_again.content == b""
        assert reference("upsert_updated_success_response.json") is None
        assert_same_shape(
            modern.json(), reference("upsert_created_success_response.json"), extra=("created",)
        )
        assert multiple.status_code == 300
        assert_same_shape(multiple.json(), reference("upsert_multiple_error_response.json"))
        assert bad_field.status_code == 404
        assert_same_shape(bad_field.json(), reference("upsert_error_response.json"))
        assert_same_shape(missing.json(), reference("sobject_describe_error_response.json"))

    run(main)
    emulator.close()


def test_describe_bodies_match_the_reference():
    emulator, _ = make_emulator()

    async def main() -> None:
        async with client(emulator) as http:
            headers = await bearer(http)
            global_ = await http.get(f"{V}/sobjects", headers=headers)
            account = await http.get(f"{V}/sobjects/Account/describe", headers=headers)
            versions = await http.get("/services/data")
        assert_same_shape(global_.json(), reference("describe_sobjects_success_response.json"))
        assert_same_shape(account.json(), reference("sobject_describe_success_response.json"))
        assert_same_shape(versions.json(), reference("services_data_success_response.json"))

    run(main)
    emulator.close()


def test_every_described_field_has_the_reference_field_keys():
    emulator, _ = make_emulator()
    expected = reference("sobject_describe_success_response.json")
    assert isinstance(expected, dict)
    reference_field = expected["fields"][0]

    async def main() -> None:
        async with client(emulator) as http:
            headers = await bearer(http)
            for name in ("Account", "Contact", "Lead", "Opportunity", "User", "Invoice__c"):
                body = (await http.get(f"{V}/sobjects/{name}/describe", headers=headers)).json()
                for field in body["fields"]:
                    assert set(field) == set(reference_field), (name, field["name"])

    run(main)
    emulator.close()
