"""Composite requests and sObject Collections.

``POST /composite`` runs up to 25 subrequests in order through the same router as ordinary
calls, substituting ``@{referenceId.path}`` references (``@{newAccount.id}``,
``@{q.records[0].Id}``) from earlier results. The top level always answers 200; with
``allOrNone`` the first failure rolls every write back and the other subrequests report
``PROCESSING_HALTED``.

``/composite/sobjects`` creates, updates, upserts or deletes up to 200 records with one result
per record; with ``allOrNone`` a failure rolls the others back
(``ALL_OR_NONE_OPERATION_ROLLED_BACK``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from urllib.parse import parse_qsl, urlsplit

from .api_errors import ApiError, error_item
from .org import MultipleMatches, Org
from .rest import ApiRequest, ApiResponse, Router
from .schema import SObjectDef
from .sobjects import require_json_object
from .validation import RecordError
from .values import to_json_value

__all__ = ["CompositeRoutes"]

MAX_SUBREQUESTS = 25
MAX_RECORDS = 200
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
_PATH_PART = re.compile(r"\.([A-Za-z0-9_]+)|\[(\d+)\]")
_VERSION_PREFIX = re.compile(r"/services/data/v(\d+\.\d+)(/.*)?$")
_ROLLED_BACK = {
    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "message": "Record rolled back because not all records were valid and the request was using "
    "AllOrNone header",
    "fields": [],
}
_TOO_MANY = f"record limit reached. cannot submit more than {MAX_RECORDS} records into this call"
_HALTED = "The transaction was rolled back since another operation in the same transaction failed."


class _Unresolved(Exception):
    pass


def _resolve_path(value: object, path: str) -> object:
    for name, index in _PATH_PART.findall(path):
        if name:
            if not isinstance(value, dict) or name not in value:
                raise _Unresolved(name)
            value = value[name]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise _Unresolved(index)
            value = value[int(index)]
    return value


def _substitute(value: object, results: Mapping[str, object]) -> object:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            ref, path = match.group(1), match.group(2)
            if ref not in results:
                raise _Unresolved(ref)
            resolved = _resolve_path(results[ref], path)
            return "" if resolved is None else str(resolved)

        return _REFERENCE.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, results) for v in value]
    return value


class CompositeRoutes:
    """Handlers for ``/composite`` and ``/composite/sobjects``."""

    def __init__(self, org: Org, router: Router) -> None:
        self.org = org
        self.router = router

    def register(self, router: Router) -> None:
        """Add the composite routes to ``router``."""
        router.add("POST", r"/composite", self.composite)
        router.add("POST", r"/composite/sobjects", self.create_many)
        router.add("PATCH", r"/composite/sobjects", self.update_many)
        router.add("DELETE", r"/composite/sobjects", self.delete_many)
        router.add("GET", r"/composite/sobjects/([A-Za-z][A-Za-z0-9_]*)", self.read_many)
        router.add(
            "PATCH",
            r"/composite/sobjects/([A-Za-z][A-Za-z0-9_]*)/([A-Za-z][A-Za-z0-9_]*)",
            self.upsert_many,
        )

    # -- composite ----------------------------------------------------------------------------

    def composite(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        body = require_json_object(request.body)
        subrequests = body.get("compositeRequest")
        if not isinstance(subrequests, list) or not subrequests:
            raise ApiError(400, "JSON_PARSER_ERROR", "compositeRequest must be a non-empty array")
        if len(subrequests) > MAX_SUBREQUESTS:
            raise ApiError(
                400,
                "LIMIT_EXCEEDED",
                f"Exceeded max limit of subrequests. Max limit is {MAX_SUBREQUESTS}",
            )
        all_or_none = body.get("allOrNone") is True
        snapshot = self.org.store.snapshot() if all_or_none else None
        results: dict[str, object] = {}
        responses: list[dict[str, object]] = []
        failed = False
        for raw in subrequests:
            sub = require_json_object(raw)
            reference_id = str(sub.get("referenceId", ""))
            if failed and all_or_none:
                responses.append(
                    _sub_response(400, [error_item("PROCESSING_HALTED", _HALTED)], reference_id)
                )
                continue
            status, payload, headers = self._run_subrequest(sub, results, request)
            if status < 400:
                results[reference_id] = payload
            else:
                failed = True
            responses.append(_sub_response(status, payload, reference_id, headers))
        if failed and all_or_none and snapshot is not None:
            self.org.store.restore(snapshot)
            for response in responses:
                if int(str(response["httpStatusCode"])) < 400:
                    response.update(
                        body=[error_item("PROCESSING_HALTED", _HALTED)],
                        httpHeaders={},
                        httpStatusCode=400,
                    )
        return ApiResponse(200, {"compositeResponse": responses})

    def _run_subrequest(
        self, sub: Mapping[str, object], results: Mapping[str, object], parent: ApiRequest
    ) -> tuple[int, object, dict[str, str]]:
        try:
            url = str(_substitute(sub.get("url", ""), results))
            body = _substitute(sub.get("body"), results)
        except _Unresolved as exc:
            message = f"Invalid reference specified. No value for {exc.args[0]} found."
            return 400, [error_item("PROCESSING_HALTED", message)], {}
        split = urlsplit(url)
        match = _VERSION_PREFIX.match(split.path)
        if match is None:
            return 400, [error_item("NOT_FOUND", "The requested resource does not exist")], {}
        headers = {str(k).lower(): str(v) for k, v in dict(sub.get("httpHeaders") or {}).items()}  # type: ignore[call-overload]
        sub_request = ApiRequest(
            method=str(sub.get("method", "GET")).upper(),
            path=match.group(2) or "/",
            version=match.group(1),
            params=dict(parse_qsl(split.query)),
            headers=headers,
            body=body,
            user_id=parent.user_id,
        )
        if sub_request.path.startswith("/composite") and not sub_request.path.startswith(
            "/composite/sobjects"
        ):
            return 400, [error_item("INVALID_API_INPUT", "Composite requests cannot be nested")], {}
        try:
            response = self.router.dispatch(sub_request)
        except ApiError as exc:
            return exc.status, exc.body, {}
        return response.status, response.body, response.headers

    # -- collections --------------------------------------------------------------------------

    def _records(self, request: ApiRequest) -> tuple[list[Mapping[str, object]], bool]:
        body = require_json_object(request.body)
        records = body.get("records")
        if not isinstance(records, list):
            raise ApiError(400, "JSON_PARSER_ERROR", "records must be an array")
        if len(records) > MAX_RECORDS:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                _TOO_MANY,
            )
        return [require_json_object(r) for r in records], body.get("allOrNone") is True

    def _typed(self, record: Mapping[str, object]) -> SObjectDef:
        attributes = record.get("attributes")
        name = attributes.get("type") if isinstance(attributes, dict) else None
        sobject = self.org.sobject(str(name)) if name else None
        if sobject is None:
            raise RecordError("INVALID_TYPE", f"sObject type '{name}' is not supported.")
        return sobject

    def _each(
        self,
        items: list[Mapping[str, object]] | list[str],
        all_or_none: bool,
        apply: Callable[[object], dict[str, object]],
    ) -> ApiResponse:
        snapshot = self.org.store.snapshot() if all_or_none else None
        results: list[dict[str, object]] = []
        failed = False
        for item in items:
            try:
                results.append(apply(item))
            except RecordError as exc:
                failed = True
                result: dict[str, object] = {"success": False, "errors": [exc.collection_item()]}
                if isinstance(item, str):
                    result = {"id": item, **result}
                elif isinstance(item, Mapping) and item.get("Id"):
                    result = {"id": item.get("Id"), **result}
                results.append(result)
            except MultipleMatches as exc:
                failed = True
                results.append(
                    {
                        "success": False,
                        "errors": [
                            {
                                "statusCode": "DUPLICATE_EXTERNAL_ID",
                                "message": f"external ID matched {len(exc.ids)} records",
                                "fields": [],
                            }
                        ],
                    }
                )
        if failed and snapshot is not None:
            self.org.store.restore(snapshot)
            results = [
                r
                if r["success"] is False
                else {"id": r.get("id"), "success": False, "errors": [_ROLLED_BACK]}
                for r in results
            ]
            for r in results:
                r.pop("created", None)
        return ApiResponse(200, results)

    def create_many(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        records, all_or_none = self._records(request)

        def apply(item: object) -> dict[str, object]:
            record = require_json_object(item)
            created = self.org.create(self._typed(record), record, request.user_id)
            return {"id": created["Id"], "success": True, "errors": []}

        return self._each(records, all_or_none, apply)

    def update_many(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        records, all_or_none = self._records(request)

        def apply(item: object) -> dict[str, object]:
            record = require_json_object(item)
            record_id = record.get("Id")
            if not isinstance(record_id, str):
                raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            updated = self.org.update(self._typed(record), record_id, record, request.user_id)
            return {"id": updated["Id"], "success": True, "errors": []}

        return self._each(records, all_or_none, apply)

    def delete_many(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        ids = [i for i in request.params.get("ids", "").split(",") if i]
        if not ids:
            raise ApiError(400, "REQUIRED_FIELD_MISSING", "At least 1 Id is required.")
        if len(ids) > MAX_RECORDS:
            raise ApiError(
                400,
                "EXCEEDED_ID_LIMIT",
                _TOO_MANY,
            )
        all_or_none = request.params.get("allOrNone", "").lower() == "true"

        def apply(item: object) -> dict[str, object]:
            record_id = str(item)
            found = self.org.store.locate(record_id)
            if found is None:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            deleted = self.org.delete(found[0], record_id)
            return {"id": deleted, "success": True, "errors": []}

        return self._each(ids, all_or_none, apply)

    def upsert_many(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self.org.sobject(groups[0])
        if sobject is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        fdef = sobject.field(groups[1])
        if fdef is None or not fdef.external_id:
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {groups[1]}",
            )
        records, all_or_none = self._records(request)

        def apply(item: object) -> dict[str, object]:
            record = require_json_object(item)
            value = next((v for k, v in record.items() if k.lower() == fdef.name.lower()), None)
            if not isinstance(value, str) or not value:
                raise RecordError("MISSING_ARGUMENT", f"{fdef.name} not specified", [fdef.name])
            upserted, created = self.org.upsert(
                self._typed(record), fdef.name, value, record, request.user_id
            )
            return {"id": upserted["Id"], "success": True, "errors": [], "created": created}

        return self._each(records, all_or_none, apply)

    def read_many(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self.org.sobject(groups[0])
        if sobject is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource does not exist")
        ids = [i for i in request.params.get("ids", "").split(",") if i]
        names = [n.strip() for n in request.params.get("fields", "Id").split(",") if n.strip()]
        fields = []
        for name in names:
            fdef = sobject.field(name)
            if fdef is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"No such column '{name}' on sobject of type {sobject.name}",
                )
            fields.append(fdef.name)
        out: list[object] = []
        base = f"/services/data/v{request.version}/sobjects/{sobject.name}"
        for record_id in ids:
            record = self.org.store.get(record_id)
            if record is None or str(record["Id"])[:3] != sobject.key_prefix:
                out.append(None)
                continue
            item: dict[str, object] = {
                "attributes": {
                    "type": sobject.name,
                    "url": f"{base}/{record['Id']}",
                }
            }
            item.update({name: to_json_value(record.get(name)) for name in fields})
            out.append(item)
        return ApiResponse(200, out)


def _sub_response(
    status: int, body: object, reference_id: str, headers: Mapping[str, str] | None = None
) -> dict[str, object]:
    return {
        "body": body,
        "httpHeaders": dict(headers or {}),
        "httpStatusCode": status,
        "referenceId": reference_id,
    }
