"""The emulated org's records: the lazy seed underneath, an overlay of writes on top.

Reads walk the seed in index order, substituting any overlaid version of a seeded record, then
the records created at run time in creation order. Writes never touch the seed: an update or a
soft delete stores the new version of the record in the overlay; a hard delete stores a tombstone.
Memory therefore grows with the number of writes, not with the size of the org.

Records are replaced, never mutated in place, so :meth:`RecordStore.snapshot` is a shallow copy
of the overlay and ``allOrNone`` rollbacks are a :meth:`RecordStore.restore`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .ids import make_id, normalize_id, parse_id
from .schema import FieldValue, Record, Schema, SObjectDef
from .seed import SeedData

__all__ = ["RecordStore", "StoreSnapshot"]


@dataclass(frozen=True)
class StoreSnapshot:
    """A restorable copy of the overlay."""

    changed: dict[str, dict[int, Record | None]]
    created: dict[str, dict[str, Record]]
    counter: int


class RecordStore:
    """Seeded records plus run-time writes, for every sObject in the schema."""

    def __init__(self, schema: Schema, seed: SeedData) -> None:
        self.schema = schema
        self.seed = seed
        # sobject (lower) -> seeded index -> overlaid version (None = hard deleted)
        self._changed: dict[str, dict[int, Record | None]] = {}
        # sobject (lower) -> id -> record created at run time (removed on hard delete)
        self._created: dict[str, dict[str, Record]] = {}
        self._counter = itertools.count(1)
        self._last_counter = 0

    # -- reads --------------------------------------------------------------------------------

    def iter_records(self, sobject: SObjectDef, *, include_deleted: bool) -> Iterator[Record]:
        """Every record of ``sobject`` (soft-deleted ones only with ``include_deleted``)."""
        key = sobject.name.lower()
        changed = self._changed.setdefault(key, {})
        generate = self.seed.record
        name = sobject.name
        for index in range(self.seed.count(key)):
            if index in changed:
                overlaid = changed[index]
                if overlaid is None:
                    continue
                record = overlaid
            else:
                record = generate(name, index)
            if include_deleted or not record["IsDeleted"]:
                yield record
        for record in list(self._created.get(key, {}).values()):
            if include_deleted or not record["IsDeleted"]:
                yield record

    def count(self, sobject: SObjectDef, *, include_deleted: bool) -> int:
        """How many records :meth:`iter_records` would yield, computed from the overlay alone."""
        key = sobject.name.lower()
        total = self.seed.count(key)
        for overlaid in self._changed.get(key, {}).values():
            if overlaid is None or (overlaid["IsDeleted"] and not include_deleted):
                total -= 1
        for record in self._created.get(key, {}).values():
            if include_deleted or not record["IsDeleted"]:
                total += 1
        return total

    def locate(self, record_id: str) -> tuple[SObjectDef, Record] | None:
        """The record with ``record_id`` (15 or 18 characters), deleted or not, and its type."""
        parts = parse_id(record_id)
        if parts is None:
            return None
        sobject = self.schema.by_prefix(parts.key_prefix)
        if sobject is None:
            return None
        key = sobject.name.lower()
        if parts.seeded:
            index = self.seed.index_for_id(parts.counter)
            if not 0 <= index < self.seed.count(key):
                return None
            changed = self._changed.get(key, {})
            if index in changed:
                overlaid = changed[index]
                return None if overlaid is None else (sobject, overlaid)
            return sobject, self.seed.record(sobject.name, index)
        full = normalize_id(record_id)
        record = self._created.get(key, {}).get(full or "")
        return None if record is None else (sobject, record)

    def get(self, record_id: str) -> Record | None:
        """The live (not deleted) record with ``record_id``, of any type."""
        found = self.locate(record_id)
        if found is None or found[1]["IsDeleted"]:
            return None
        return found[1]

    def find_by_external_id(self, sobject: SObjectDef, field: str, value: str) -> list[Record]:
        """Live records of ``sobject`` whose ``field`` equals ``value`` (case-insensitive)."""
        key = sobject.name.lower()
        wanted = value.lower()
        changed = self._changed.get(key, {})
        matches: list[Record] = []
        index = self.seed.index_for_external_id(key, field, value)
        if index is not None and index not in changed:
            matches.append(self.seed.record(sobject.name, index))
        overlay: list[Record | None] = [*changed.values(), *self._created.get(key, {}).values()]
        for record in overlay:
            if record is None or record["IsDeleted"]:
                continue
            current = record.get(field)
            if isinstance(current, str) and current.lower() == wanted:
                matches.append(record)
        return matches

    # -- writes -------------------------------------------------------------------------------

    def insert(
        self, sobject: SObjectDef, values: Mapping[str, FieldValue], *, user_id: str, now: datetime
    ) -> Record:
        """Create a record from already-validated ``values``; returns it."""
        counter = next(self._counter)
        self._last_counter = counter
        record_id = make_id(sobject.key_prefix, counter, seeded=False)
        now = now.astimezone(UTC)
        record: Record = {f.name: f.default for f in sobject.fields}
        record.update(
            {
                "Id": record_id,
                "IsDeleted": False,
                "CreatedDate": now,
                "CreatedById": user_id,
                "LastModifiedDate": now,
                "LastModifiedById": user_id,
                "SystemModstamp": now,
            }
        )
        if sobject.field("OwnerId") is not None:
            record["OwnerId"] = user_id
        record.update(values)
        _derive(sobject, record)
        self._created.setdefault(sobject.name.lower(), {})[record_id] = record
        return record

    def update(
        self,
        sobject: SObjectDef,
        record_id: str,
        values: Mapping[str, FieldValue],
        *,
        user_id: str,
        now: datetime,
    ) -> Record | None:
        """Apply ``values`` to a live record; ``None`` if there is no such record."""
        current = self.get(record_id)
        if current is None or current["Id"][:3] != sobject.key_prefix:  # type: ignore[index]
            return None
        record = {**current, **values}
        record["LastModifiedDate"] = record["SystemModstamp"] = now.astimezone(UTC)
        record["LastModifiedById"] = user_id
        _derive(sobject, record)
        self._put(sobject, record)
        return record

    def delete(
        self, sobject: SObjectDef, record_id: str, *, now: datetime, hard: bool = False
    ) -> bool:
        """Soft-delete (or hard-delete) a live record; ``False`` if there is no such record."""
        current = self.get(record_id)
        if current is None or str(current["Id"])[:3] != sobject.key_prefix:
            return False
        if hard:
            self._remove(sobject, str(current["Id"]))
            return True
        record = {**current, "IsDeleted": True, "SystemModstamp": now.astimezone(UTC)}
        self._put(sobject, record)
        return True

    def _put(self, sobject: SObjectDef, record: Record) -> None:
        record_id = str(record["Id"])
        key = sobject.name.lower()
        parts = parse_id(record_id)
        if parts is not None and parts.seeded:
            self._changed.setdefault(key, {})[self.seed.index_for_id(parts.counter)] = record
        else:
            self._created.setdefault(key, {})[record_id] = record

    def _remove(self, sobject: SObjectDef, record_id: str) -> None:
        key = sobject.name.lower()
        parts = parse_id(record_id)
        if parts is not None and parts.seeded:
            self._changed.setdefault(key, {})[self.seed.index_for_id(parts.counter)] = None
        else:
            self._created.get(key, {}).pop(record_id, None)

    # -- transactions -------------------------------------------------------------------------

    def snapshot(self) -> StoreSnapshot:
        """A copy of the overlay to :meth:`restore` if a transaction fails."""
        return StoreSnapshot(
            changed={k: dict(v) for k, v in self._changed.items()},
            created={k: dict(v) for k, v in self._created.items()},
            counter=self._last_counter,
        )

    def restore(self, snapshot: StoreSnapshot) -> None:
        """Put the overlay back as it was at ``snapshot`` (ids are not reused)."""
        self._changed = {k: dict(v) for k, v in snapshot.changed.items()}
        self._created = {k: dict(v) for k, v in snapshot.created.items()}

    @property
    def overlay_size(self) -> int:
        """Records held in memory by the overlay (for tests of the memory bound)."""
        return sum(len(v) for v in self._changed.values()) + sum(
            len(v) for v in self._created.values()
        )


def _derive(sobject: SObjectDef, record: Record) -> None:
    """Fill formula-like fields the way the real objects do (full names)."""
    if sobject.name in ("Contact", "Lead", "User"):
        first = record.get("FirstName")
        last = record.get("LastName")
        record["Name"] = " ".join(str(p) for p in (first, last) if p)
    if sobject.name == "Opportunity":
        record["IsWon"] = record.get("StageName") == "Closed Won"
