"""The emulated org: schema, records and the write operations every API shares.

REST sObject calls, sObject Collections, composite subrequests and Bulk 2.0 rows all create,
update, delete and upsert through :class:`Org`, so validation and results agree across APIs.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from connectors.clock import Clock

from .ids import normalize_id
from .schema import Record, Schema, SObjectDef
from .seed import SeedData, SeedSpec
from .store import RecordStore
from .validation import RecordError, ValidationRule, validate_write

__all__ = ["MultipleMatches", "Org"]


class MultipleMatches(Exception):
    """An upsert's external id matched several records (HTTP 300)."""

    def __init__(self, records: list[Record]) -> None:
        super().__init__(f"{len(records)} records match")
        self.ids = [str(r["Id"]) for r in records]


class Org:
    """Records and write rules of one emulated org."""

    def __init__(self, schema: Schema, seed: SeedSpec, clock: Clock, *, admin_user_id: str) -> None:
        self.schema = schema
        self.clock = clock
        self.seed = SeedData(schema, seed, anchor=self.now(), owner_id=admin_user_id)
        self.store = RecordStore(schema, self.seed)
        self.rules: list[ValidationRule] = []

    def now(self) -> datetime:
        """The clock's wall time as an aware UTC datetime."""
        return datetime.fromtimestamp(self.clock.time(), UTC)

    def sobject(self, name: str) -> SObjectDef | None:
        """The sObject type called ``name`` (case-insensitive)."""
        return self.schema.get(name)

    def _live(self, sobject: SObjectDef, record_id: str) -> Record:
        full = normalize_id(record_id)
        if full is None:
            raise RecordError("MALFORMED_ID", f"malformed id {record_id}", ["Id"])
        found = self.store.locate(full)
        if found is None or found[0].name != sobject.name:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["Id"])
        if found[1]["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
        return found[1]

    def create(self, sobject: SObjectDef, body: Mapping[str, object], user_id: str) -> Record:
        """Validate and insert a record; raises RecordError."""
        values = validate_write(
            sobject,
            body,
            existing=None,
            schema=self.schema,
            lookup=self.store.get,
            rules=self.rules,
        )
        return self.store.insert(sobject, values, user_id=user_id, now=self.now())

    def update(
        self, sobject: SObjectDef, record_id: str, body: Mapping[str, object], user_id: str
    ) -> Record:
        """Validate and apply an update to a live record; raises RecordError."""
        current = self._live(sobject, record_id)
        values = validate_write(
            sobject,
            body,
            existing=current,
            schema=self.schema,
            lookup=self.store.get,
            rules=self.rules,
        )
        updated = self.store.update(
            sobject, str(current["Id"]), values, user_id=user_id, now=self.now()
        )
        assert updated is not None
        return updated

    def delete(self, sobject: SObjectDef, record_id: str, *, hard: bool = False) -> str:
        """Delete a live record (soft unless ``hard``); returns its 18-character id."""
        current = self._live(sobject, record_id)
        self.store.delete(sobject, str(current["Id"]), now=self.now(), hard=hard)
        return str(current["Id"])

    def upsert(
        self,
        sobject: SObjectDef,
        field: str,
        value: str,
        body: Mapping[str, object],
        user_id: str,
        *,
        update_only: bool = False,
    ) -> tuple[Record, bool]:
        """Update the record whose external id ``field`` is ``value``, or create it.

        Returns ``(record, created)``; raises MultipleMatches, or RecordError (``NOT_FOUND`` when
        ``update_only`` and nothing matches).
        """
        fdef = sobject.field(field)
        if fdef is None or not (fdef.external_id or fdef.name == "Id"):
            raise RecordError(
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {field}",
            )
        body = {k: v for k, v in body.items() if k.lower() != fdef.name.lower()}
        if fdef.name == "Id":
            current = self.store.get(value) if normalize_id(value) else None
            matches = [current] if current is not None else []
        else:
            matches = self.store.find_by_external_id(sobject, fdef.name, value)
        if len(matches) > 1:
            raise MultipleMatches(matches)
        if matches:
            return self.update(sobject, str(matches[0]["Id"]), body, user_id), False
        if update_only or fdef.name == "Id":
            raise RecordError("NOT_FOUND", "The requested resource does not exist")
        return self.create(sobject, {**body, fdef.name: value}, user_id), True
