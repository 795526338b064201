"""Running SOQL over the store: lazy record streams, counts and REST query cursors.

A query's records are a generator over the store; filtering, offset and limit are applied while
iterating, so paging through a million seeded records holds one page at a time. ``ORDER BY``
must see every matching record: without ``LIMIT`` it sorts them in memory, with ``LIMIT`` it keeps
only the best ``OFFSET + LIMIT`` (``heapq.nsmallest``).

A REST cursor keeps the generator and its position; ``nextRecordsUrl`` is
``/services/data/vXX.X/query/<01g locator>-<position>``. Asking for another position replays the
query and skips ahead, so any locator Salesforce would accept works.
"""

from __future__ import annotations

import heapq
import itertools
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from .api_errors import ApiError
from .ids import make_id
from .org import Org
from .schema import Record
from .soql_errors import SoqlError
from .soql_eval import CompiledQuery, compile_query
from .soql_parser import parse_soql

__all__ = ["QueryCursor", "QueryService", "parse_batch_size"]

MIN_BATCH = 200
MAX_BATCH = 2000
_LOCATOR_PREFIX = "01g"


def parse_batch_size(header: str | None, default: int) -> int:
    """``Sforce-Query-Options: batchSize=N``, clamped to Salesforce's 200..2000."""
    if not header:
        return default
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name.strip().lower() == "batchsize" and value.strip().isdigit():
            return max(MIN_BATCH, min(MAX_BATCH, int(value.strip())))
    return default


@dataclass
class QueryCursor:
    """An open query: its compiled form, the record stream and how far it has been read."""

    locator: str
    compiled: CompiledQuery
    include_deleted: bool
    total: int
    batch_size: int
    records: Iterator[Record]
    position: int = 0


class QueryService:
    """Compiles and runs queries; keeps open cursors (least recently used evicted first)."""

    def __init__(self, org: Org, *, batch_size: int, max_cursors: int) -> None:
        self.org = org
        self.batch_size = batch_size
        self.max_cursors = max_cursors
        self.cursors: OrderedDict[str, QueryCursor] = OrderedDict()
        self._locators = itertools.count(1)

    def compile(self, text: str, version: str) -> CompiledQuery:
        """Parse and check ``text``; raises ApiError 400 with the SOQL error code."""
        try:
            return compile_query(
                parse_soql(text),
                text,
                self.org.schema,
                lookup=self.org.store.get,
                now=self.org.now(),
                version=version,
            )
        except SoqlError as exc:
            raise ApiError(400, exc.error_code, exc.message) from None

    def matching(self, compiled: CompiledQuery, include_deleted: bool) -> Iterator[Record]:
        """Every matching record, before ordering, offset and limit."""
        records = self.org.store.iter_records(compiled.sobject, include_deleted=include_deleted)
        if compiled.matches is None:
            return records
        return filter(compiled.matches, records)

    def stream(self, compiled: CompiledQuery, include_deleted: bool) -> Iterator[Record]:
        """The query's records in order, with offset and limit applied."""
        query = compiled.query
        records = self.matching(compiled, include_deleted)
        offset = query.offset or 0
        if compiled.sort_key is not None:
            if query.limit is not None:
                records = iter(
                    heapq.nsmallest(offset + query.limit, records, key=compiled.sort_key)
                )
            else:
                records = iter(sorted(records, key=compiled.sort_key))
        stop = None if query.limit is None else offset + query.limit
        return itertools.islice(records, offset, stop)

    def count(self, compiled: CompiledQuery, include_deleted: bool) -> int:
        """How many records the query returns (``totalSize``)."""
        if compiled.matches is None:
            matched = self.org.store.count(compiled.sobject, include_deleted=include_deleted)
        else:
            matched = sum(1 for _ in self.matching(compiled, include_deleted))
        query = compiled.query
        matched = max(matched - (query.offset or 0), 0)
        return matched if query.limit is None else min(matched, query.limit)

    # -- REST query ---------------------------------------------------------------------------

    def run(
        self, text: str, *, include_deleted: bool, version: str, batch_size: int
    ) -> dict[str, object]:
        """``GET /query`` and ``/queryAll``: the first page."""
        compiled = self.compile(text, version)
        if compiled.is_count:
            return self._aggregate(compiled, include_deleted)
        total = self.count(compiled, include_deleted)
        locator = make_id(_LOCATOR_PREFIX, next(self._locators), seeded=False)
        cursor = QueryCursor(
            locator,
            compiled,
            include_deleted,
            total,
            batch_size,
            self.stream(compiled, include_deleted),
        )
        return self._page(cursor)

    def more(self, locator: str, position: int, version: str) -> dict[str, object]:
        """``GET /query/<locator>-<position>``: a later page."""
        cursor = self.cursors.get(locator)
        if cursor is None or position > cursor.total:
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        self.cursors.move_to_end(locator)
        if position < cursor.position:
            cursor.records = self.stream(cursor.compiled, cursor.include_deleted)
            cursor.position = 0
        if position > cursor.position:
            for _ in itertools.islice(cursor.records, position - cursor.position):
                pass
            cursor.position = position
        return self._page(cursor)

    def _page(self, cursor: QueryCursor) -> dict[str, object]:
        compiled = cursor.compiled
        batch = list(itertools.islice(cursor.records, cursor.batch_size))
        cursor.position += len(batch)
        done = cursor.position >= cursor.total or len(batch) < cursor.batch_size
        body: dict[str, object] = {"totalSize": cursor.total, "done": done}
        if done:
            self.cursors.pop(cursor.locator, None)
        else:
            self.cursors[cursor.locator] = cursor
            self.cursors.move_to_end(cursor.locator)
            while len(self.cursors) > self.max_cursors:
                self.cursors.popitem(last=False)
            body["nextRecordsUrl"] = (
                f"/services/data/v{compiled.version}/query/{cursor.locator}-{cursor.position}"
            )
        body["records"] = [compiled.project(record) for record in batch]
        return body

    def _aggregate(self, compiled: CompiledQuery, include_deleted: bool) -> dict[str, object]:
        if compiled.is_count_star:
            return {"totalSize": self.count(compiled, include_deleted), "done": True, "records": []}
        count_field = compiled.count_field
        assert count_field is not None
        name = count_field.field.name
        count = sum(
            1 for record in self.stream(compiled, include_deleted) if record.get(name) is not None
        )
        return {
            "totalSize": 1,
            "done": True,
            "records": [{"attributes": {"type": "AggregateResult"}, "expr0": count}],
        }
