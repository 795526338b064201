"""Bulk API 2.0 query jobs: create, poll, and read results as CSV pages with locators.

A query job starts in ``UploadComplete`` (as Salesforce's do), advances as it is polled, and
serves ``GET /jobs/query/{id}/results?locator=&maxRecords=`` as CSV with the
``Sforce-Locator`` (``null`` after the last page) and ``Sforce-NumberOfRecords`` headers. The
job keeps one live record stream positioned at the next locator, so reading pages in order
never materialises the result set.
"""

from __future__ import annotations

import csv
import io
import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field

from connectors.clock import Clock

from .api_errors import ApiError, not_found
from .bulk_common import (
    DELIMITERS,
    LINE_ENDINGS,
    TERMINAL_STATES,
    JobClock,
    new_job_id,
    parse_dialect,
    stamp,
    status_name,
)
from .query import QueryService
from .rest import ApiRequest, ApiResponse, Router
from .schema import Record
from .sobjects import require_json_object
from .soql_eval import CompiledQuery
from .values import to_csv_value

__all__ = ["QueryJob", "QueryJobService"]

DEFAULT_MAX_RECORDS = 50_000


@dataclass
class QueryJob:
    """One query job and its read position."""

    id: str
    operation: str
    query: str
    compiled: CompiledQuery
    column_delimiter: str
    line_ending: str
    created_by: str
    created_at: float
    api_version: str
    state: str = "UploadComplete"
    polls: int = 0
    started: float = 0.0
    records_processed: int = 0
    # locator -> row offset it stands for
    locators: dict[str, int] = field(default_factory=dict)
    stream: Iterator[Record] | None = None
    stream_position: int = 0
    lookahead: list[Record] = field(default_factory=list)

    def info(self, *, full: bool) -> dict[str, object]:
        """The job info body."""
        body: dict[str, object] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.compiled.sobject.name,
            "createdById": self.created_by,
            "createdDate": stamp(self.created_at),
            "systemModstamp": stamp(self.created_at),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.api_version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.column_delimiter,
        }
        if full:
            body.update(
                jobType="V2Query",
                numberRecordsProcessed=self.records_processed,
                retries=0,
                totalProcessingTime=0,
                isPkChunkingSupported=True,
            )
        return body


class QueryJobService:
    """All query jobs of the org."""

    def __init__(
        self,
        queries: QueryService,
        clock: Clock,
        job_clock: JobClock,
        *,
        job_ids: itertools.count[int],
    ) -> None:
        self.queries = queries
        self.clock = clock
        self.job_clock = job_clock
        self.jobs: dict[str, QueryJob] = {}
        self._job_ids = job_ids

    def register(self, router: Router) -> None:
        """Add the query job routes."""
        router.add("POST", r"/jobs/query", self.create)
        router.add("GET", r"/jobs/query", self.list_jobs)
        router.add("GET", r"/jobs/query/([^/]+)", self.get)
        router.add("PATCH", r"/jobs/query/([^/]+)", self.abort)
        router.add("DELETE", r"/jobs/query/([^/]+)", self.delete)
        router.add("GET", r"/jobs/query/([^/]+)/results", self.results)

    def job(self, job_id: str) -> QueryJob:
        """The job ``job_id``; 404 if unknown."""
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    def create(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        body = require_json_object(request.body)
        operation = str(body.get("operation", "query"))
        if operation not in ("query", "queryAll"):
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise ApiError(400, "INVALIDJOB", "The query is required")
        compiled = self.queries.compile(text, request.version)
        if compiled.is_count:
            raise ApiError(400, "API_ERROR", "Aggregate queries are not supported by Bulk API 2.0")
        delimiter, line_ending = parse_dialect(body)
        job = QueryJob(
            id=new_job_id(self._job_ids),
            operation=operation,
            query=text,
            compiled=compiled,
            column_delimiter=delimiter,
            line_ending=line_ending,
            created_by=request.user_id,
            created_at=self.clock.time(),
            api_version=request.version,
            started=self.clock.monotonic(),
        )
        self.jobs[job.id] = job
        return ApiResponse(200, job.info(full=False))

    def list_jobs(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        records = [job.info(full=False) for job in self.jobs.values()]
        return ApiResponse(200, {"done": True, "records": records, "nextRecordsUrl": None})

    def get(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        if job.state in ("UploadComplete", "InProgress"):
            job.polls += 1
            state = self.job_clock.next_state(job.polls, self.clock.monotonic() - job.started)
            if state == "JobComplete":
                job.records_processed = self.queries.count(
                    job.compiled, job.operation == "queryAll"
                )
            job.state = state
        return ApiResponse(200, job.info(full=True))

    def abort(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        if require_json_object(request.body).get("state") != "Aborted":
            raise ApiError(400, "INVALIDJOBSTATE", "Only Aborted may be set on a query job")
        if job.state in TERMINAL_STATES:
            raise ApiError(409, "INVALIDJOBSTATE", f"Job is already finished: {job.state}")
        job.state = "Aborted"
        return ApiResponse(200, job.info(full=False))

    def delete(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        del self.jobs[job.id]
        return ApiResponse(204)

    def results(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        if job.state != "JobComplete":
            raise ApiError(
                412,
                "JOB_NOT_COMPLETE",
                "can only download query results of successfully completed bulk job with "
                f"status: JOB_COMPLETE. Current status: {status_name(job.state)}",
            )
        if request.version != job.api_version:
            raise ApiError(
                409,
                "INVALIDJOBSTATE",
                f"The job was created with API version {job.api_version}; read its results "
                "with the same version",
            )
        raw_max = request.params.get("maxRecords", "")
        max_records = (
            int(raw_max) if raw_max.isdigit() and int(raw_max) > 0 else DEFAULT_MAX_RECORDS
        )
        locator = request.params.get("locator") or ""
        if locator and locator not in job.locators:
            raise ApiError(400, "INVALIDLOCATOR", f"Invalid locator: {locator}")
        start = job.locators.get(locator, 0)
        rows = self._take(job, start, max_records)
        more = self._has_more(job)
        next_locator = "null"
        if more:
            next_locator = secrets.token_urlsafe(9)
            job.locators[next_locator] = start + len(rows)
        out = io.StringIO()
        newline = LINE_ENDINGS[job.line_ending]
        writer = csv.writer(
            out,
            delimiter=DELIMITERS[job.column_delimiter],
            lineterminator=newline,
            quoting=csv.QUOTE_ALL,
        )
        writer.writerow([f.header for f in job.compiled.fields])
        for record in rows:
            writer.writerow([to_csv_value(v) for v in job.compiled.row(record)])
        headers = {"Sforce-Locator": next_locator, "Sforce-NumberOfRecords": str(len(rows))}
        return ApiResponse(200, text=out.getvalue(), headers=headers)

    def _take(self, job: QueryJob, start: int, count: int) -> list[Record]:
        if job.stream is None or start != job.stream_position:
            job.stream = self.queries.stream(job.compiled, job.operation == "queryAll")
            job.lookahead = []
            job.stream_position = 0
            for _ in itertools.islice(job.stream, start):
                job.stream_position += 1
        rows = job.lookahead[:count]
        job.lookahead = job.lookahead[count:]
        rows.extend(itertools.islice(job.stream, count - len(rows)))
        job.stream_position += len(rows)
        return rows

    def _has_more(self, job: QueryJob) -> bool:
        if job.lookahead:
            return True
        assert job.stream is not None
        nxt = next(job.stream, None)
        if nxt is None:
            return False
        job.lookahead.append(nxt)
        return True
