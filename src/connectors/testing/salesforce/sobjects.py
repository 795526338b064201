"""REST sObject resources: describe, create, read, update, delete and upsert by external id.

Status codes follow Salesforce: create 201 ``{"id","success","errors"}``; update and delete 204;
upsert 201 with ``created: true`` or 200 with ``created: false`` (204 and no ``created`` before
API v46.0); 300 with the candidate URLs when an external id matches several records; 404
``NOT_FOUND`` for a missing record or a field that is not an external id.
"""

from __future__ import annotations

from collections.abc import Mapping

from .api_errors import ApiError, not_found
from .config import parse_version
from .describe import describe_global, describe_sobject, sobject_summary
from .org import MultipleMatches, Org
from .rest import ApiRequest, ApiResponse, Router
from .schema import SObjectDef
from .validation import RecordError
from .values import to_json_value

__all__ = ["SObjectRoutes", "record_error_to_api", "require_json_object"]

_NAME = r"([A-Za-z][A-Za-z0-9_]*)"
_SEGMENT = r"([^/]+)"


def record_error_to_api(exc: RecordError) -> ApiError:
    """A single-record failure as a REST error (404 for missing records, else 400)."""
    if exc.code in ("INVALID_CROSS_REFERENCE_KEY", "MALFORMED_ID") and exc.fields == ["Id"]:
        return not_found()
    if exc.code in ("NOT_FOUND", "ENTITY_IS_DELETED"):
        return ApiError(404, exc.code, exc.message, exc.fields if exc.code != "NOT_FOUND" else None)
    fields = None if exc.code == "INVALID_FIELD" else exc.fields
    return ApiError(400, exc.code, exc.message, fields)


def require_json_object(body: object) -> Mapping[str, object]:
    """The request body as a JSON object; 400 ``JSON_PARSER_ERROR`` otherwise."""
    if not isinstance(body, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "The request body must be a JSON object")
    return body


class SObjectRoutes:
    """Handlers for ``/sobjects/...``."""

    def __init__(self, org: Org, *, instance_url: str, upsert_created_since: str) -> None:
        self.org = org
        self.instance_url = instance_url
        self.created_since = parse_version(upsert_created_since) or (46, 0)

    def register(self, router: Router) -> None:
        """Add the sObject routes to ``router``."""
        router.add("GET", r"/sobjects", self.describe_global)
        router.add("GET", rf"/sobjects/{_NAME}", self.basic_info)
        router.add("POST", rf"/sobjects/{_NAME}", self.create)
        router.add("GET", rf"/sobjects/{_NAME}/describe", self.describe)
        router.add("GET", rf"/sobjects/{_NAME}/{_SEGMENT}", self.read)
        router.add("PATCH", rf"/sobjects/{_NAME}/{_SEGMENT}", self.update)
        router.add("DELETE", rf"/sobjects/{_NAME}/{_SEGMENT}", self.delete)
        router.add("GET", rf"/sobjects/{_NAME}/{_NAME}/{_SEGMENT}", self.read_by_external_id)
        router.add("PATCH", rf"/sobjects/{_NAME}/{_NAME}/{_SEGMENT}", self.upsert)

    def _sobject(self, name: str) -> SObjectDef:
        sobject = self.org.sobject(name)
        if sobject is None:
            raise not_found()
        return sobject

    def record_url(self, sobject: SObjectDef, record_id: str, version: str) -> str:
        """``/services/data/vXX.X/sobjects/<type>/<id>``."""
        return f"/services/data/v{version}/sobjects/{sobject.name}/{record_id}"

    # -- describe -----------------------------------------------------------------------------

    def describe_global(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        return ApiResponse(200, describe_global(self.org.schema, request.version))

    def basic_info(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        return ApiResponse(
            200,
            {"objectDescribe": sobject_summary(sobject, request.version), "recentItems": []},
        )

    def describe(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        body = describe_sobject(self.org.schema, sobject, request.version, self.instance_url)
        return ApiResponse(200, body)

    # -- CRUD ---------------------------------------------------------------------------------

    def create(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        body = require_json_object(request.body)
        try:
            record = self.org.create(sobject, body, request.user_id)
        except RecordError as exc:
            raise record_error_to_api(exc) from None
        return ApiResponse(
            201,
            {"id": record["Id"], "success": True, "errors": []},
            headers={"Location": self.record_url(sobject, str(record["Id"]), request.version)},
        )

    def read(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        record = self.org.store.get(groups[1])
        if record is None or str(record["Id"])[:3] != sobject.key_prefix:
            raise not_found()
        names = [f.name for f in sobject.fields]
        wanted = request.params.get("fields")
        if wanted:
            names = []
            for raw in wanted.split(","):
                fdef = sobject.field(raw.strip())
                if fdef is None:
                    raise ApiError(
                        400,
                        "INVALID_FIELD",
                        f"No such column '{raw.strip()}' on sobject of type {sobject.name}",
                    )
                names.append(fdef.name)
        body: dict[str, object] = {
            "attributes": {
                "type": sobject.name,
                "url": self.record_url(sobject, str(record["Id"]), request.version),
            }
        }
        for name in names:
            body[name] = to_json_value(record.get(name))
        return ApiResponse(200, body)

    def update(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        body = require_json_object(request.body)
        try:
            self.org.update(sobject, groups[1], body, request.user_id)
        except RecordError as exc:
            raise record_error_to_api(exc) from None
        return ApiResponse(204)

    def delete(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        try:
            self.org.delete(sobject, groups[1])
        except RecordError as exc:
            raise record_error_to_api(exc) from None
        return ApiResponse(204)

    # -- external ids -------------------------------------------------------------------------

    def _external_field(self, sobject: SObjectDef, name: str) -> str:
        fdef = sobject.field(name)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise ApiError(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {name}",
            )
        return fdef.name

    def read_by_external_id(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        field = self._external_field(sobject, groups[1])
        matches = self.org.store.find_by_external_id(sobject, field, groups[2])
        if len(matches) > 1:
            urls = [self.record_url(sobject, str(r["Id"]), request.version) for r in matches]
            return ApiResponse(300, urls)
        if not matches:
            raise not_found()
        return self.read(request, (sobject.name, str(matches[0]["Id"])))

    def upsert(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        sobject = self._sobject(groups[0])
        field = self._external_field(sobject, groups[1])
        body = require_json_object(request.body)
        update_only = request.params.get("updateOnly", "").lower() == "true"
        try:
            record, created = self.org.upsert(
                sobject, field, groups[2], body, request.user_id, update_only=update_only
            )
        except MultipleMatches as exc:
            urls = [self.record_url(sobject, rid, request.version) for rid in exc.ids]
            return ApiResponse(300, urls)
        except RecordError as exc:
            raise record_error_to_api(exc) from None
        modern = (parse_version(request.version) or (0, 0)) >= self.created_since
        result: dict[str, object] = {"id": record["Id"], "success": True, "errors": []}
        if modern:
            result["created"] = created
        if created:
            return ApiResponse(201, result)
        return ApiResponse(200, result) if modern else ApiResponse(204)
