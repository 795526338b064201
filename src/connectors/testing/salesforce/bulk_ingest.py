"""Bulk API 2.0 ingest jobs: create, upload CSV, close, poll, results.

Uploaded CSV is streamed to a file per upload, never held in memory; the first line is read to
check the header against earlier uploads. Processing reads the files back row by row, applies each
row through :class:`~.org.Org` and writes ``successfulResults`` (``sf__Id,sf__Created,...``) and
``failedResults`` (``sf__Id,sf__Error,...``) files as it goes, so a million-row job costs disk,
not memory. A closed job reports ``UploadComplete``, then ``InProgress``, then ``JobComplete`` (or
``Failed`` when its header names an unknown field) as it is polled (see :class:`JobClock`).
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

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
from .ids import make_id
from .org import MultipleMatches, Org
from .rest import ApiRequest, ApiResponse, Router
from .schema import FieldDef, SObjectDef
from .sobjects import require_json_object
from .validation import RecordError, validate_write

__all__ = ["IngestJob", "IngestService"]

OPERATIONS = ("insert", "update", "upsert", "delete", "hardDelete")
MAX_UPLOAD_BYTES = 100 * 1024 * 1024


@dataclass
class IngestJob:
    """One ingest job and its files."""

    id: str
    object_name: str
    operation: str
    external_id_field: str | None
    column_delimiter: str
    line_ending: str
    created_by: str
    created_at: float
    api_version: str
    directory: Path
    state: str = "Open"
    uploads: list[Path] = field(default_factory=list)
    header: list[str] | None = None
    bytes_uploaded: int = 0
    polls: int = 0
    closed_at: float | None = None
    processed: int = 0
    failed: int = 0
    error_message: str | None = None
    modified_at: float = 0.0

    @property
    def delimiter(self) -> str:
        return DELIMITERS[self.column_delimiter]

    @property
    def newline(self) -> str:
        return LINE_ENDINGS[self.line_ending]

    @property
    def success_path(self) -> Path:
        return self.directory / "success.csv"

    @property
    def failure_path(self) -> Path:
        return self.directory / "failed.csv"

    def info(self, *, full: bool) -> dict[str, object]:
        """The job info body (``full`` adds the counters of ``GET /jobs/ingest/{id}``)."""
        body: dict[str, object] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object_name,
            "createdById": self.created_by,
            "createdDate": stamp(self.created_at),
            "systemModstamp": stamp(self.modified_at or self.created_at),
            "state": self.state,
        }
        if self.external_id_field:
            body["externalIdFieldName"] = self.external_id_field
        body.update(
            concurrencyMode="Parallel",
            contentType="CSV",
            apiVersion=float(self.api_version),
            contentUrl=f"services/data/v{self.api_version}/jobs/ingest/{self.id}/batches",
            lineEnding=self.line_ending,
            columnDelimiter=self.column_delimiter,
        )
        if full:
            body.update(
                jobType="V2Ingest",
                numberRecordsProcessed=self.processed,
                numberRecordsFailed=self.failed,
                retries=0,
                totalProcessingTime=0,
                apiActiveProcessingTime=0,
                apexProcessingTime=0,
            )
            if self.error_message:
                body["errorMessage"] = self.error_message
        return body


class IngestService:
    """All ingest jobs of the org."""

    def __init__(
        self,
        org: Org,
        clock: Clock,
        directory: Path,
        job_clock: JobClock,
        *,
        apply_to_store: bool,
        job_ids: itertools.count[int],
    ) -> None:
        self.org = org
        self.clock = clock
        self.directory = directory
        self.job_clock = job_clock
        self.apply_to_store = apply_to_store
        self.jobs: dict[str, IngestJob] = {}
        self._job_ids = job_ids
        self._dry_ids = itertools.count(10_000_000)

    def register(self, router: Router) -> None:
        """Add the JSON/CSV ingest routes (the upload itself is :meth:`upload`)."""
        router.add("POST", r"/jobs/ingest", self.create)
        router.add("GET", r"/jobs/ingest", self.list_jobs)
        router.add("GET", r"/jobs/ingest/([^/]+)", self.get)
        router.add("PATCH", r"/jobs/ingest/([^/]+)", self.patch)
        router.add("DELETE", r"/jobs/ingest/([^/]+)", self.delete)
        router.add("GET", r"/jobs/ingest/([^/]+)/successfulResults", self.successful_results)
        router.add("GET", r"/jobs/ingest/([^/]+)/failedResults", self.failed_results)
        router.add("GET", r"/jobs/ingest/([^/]+)/unprocessedrecords", self.unprocessed_records)

    def job(self, job_id: str) -> IngestJob:
        """The job ``job_id``; 404 if unknown."""
        job = self.jobs.get(job_id)
        if job is None:
            raise not_found()
        return job

    # -- lifecycle ----------------------------------------------------------------------------

    def create(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        body = require_json_object(request.body)
        sobject = self.org.sobject(str(body.get("object", "")))
        if sobject is None:
            raise ApiError(
                400,
                "INVALIDENTITY",
                f"Entity '{body.get('object')}' is not supported by the Bulk API",
            )
        operation = str(body.get("operation", ""))
        if operation not in OPERATIONS:
            raise ApiError(400, "INVALIDJOB", f"Invalid operation: {operation}")
        external = body.get("externalIdFieldName")
        if operation == "upsert":
            fdef = sobject.field(str(external or ""))
            if fdef is None or not (fdef.external_id or fdef.name == "Id"):
                raise ApiError(
                    400,
                    "INVALIDJOB",
                    f"InvalidJob : External ID was blank or invalid for {sobject.name}: {external}",
                )
            external = fdef.name
        delimiter, line_ending = parse_dialect(body)
        job_id = new_job_id(self._job_ids)
        directory = self.directory / job_id
        directory.mkdir(parents=True)
        job = IngestJob(
            id=job_id,
            object_name=sobject.name,
            operation=operation,
            external_id_field=str(external) if operation == "upsert" else None,
            column_delimiter=delimiter,
            line_ending=line_ending,
            created_by=request.user_id,
            created_at=self.clock.time(),
            api_version=request.version,
            directory=directory,
        )
        self.jobs[job_id] = job
        return ApiResponse(200, job.info(full=False))

    def list_jobs(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        records = [job.info(full=False) for job in self.jobs.values()]
        return ApiResponse(200, {"done": True, "records": records, "nextRecordsUrl": None})

    async def upload(self, job_id: str, chunks: AsyncIterator[bytes]) -> ApiResponse:
        """``PUT /jobs/ingest/{id}/batches``: stream the CSV body to a new file."""
        job = self.job(job_id)
        if job.state != "Open":
            raise ApiError(
                409, "INVALIDJOBSTATE", f"Job is not open for uploads. Current state: {job.state}"
            )
        path = job.directory / f"upload-{len(job.uploads)}.csv"
        first_line = bytearray()
        size = 0
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if job.bytes_uploaded + size > MAX_UPLOAD_BYTES:
                    out.close()
                    path.unlink()
                    raise ApiError(400, "INVALIDBATCH", "Upload exceeds the maximum of 100 MB")
                if b"\n" not in first_line and len(first_line) < 65_536:
                    first_line.extend(chunk[:65_536])
                out.write(chunk)
        if size == 0:
            path.unlink()
            raise ApiError(400, "INVALIDBATCH", "No content found in the upload")
        header_text = (
            bytes(first_line).split(b"\n", 1)[0].decode("utf-8-sig", "replace").rstrip("\r")
        )
        header = next(csv.reader([header_text], delimiter=job.delimiter), [])
        if job.header is not None and [h.lower() for h in header] != [
            h.lower() for h in job.header
        ]:
            path.unlink()
            raise ApiError(400, "INVALIDBATCH", "All uploads of a job must have the same header")
        job.header = header
        job.uploads.append(path)
        job.bytes_uploaded += size
        job.modified_at = self.clock.time()
        return ApiResponse(201)

    def patch(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        state = require_json_object(request.body).get("state")
        if state == "UploadComplete":
            if job.state != "Open":
                raise ApiError(
                    409, "INVALIDJOBSTATE", f"Job is not open. Current state: {job.state}"
                )
            job.state = "UploadComplete"
            job.closed_at = self.clock.monotonic()
            if not job.uploads:
                job.state = "Failed"
                job.error_message = "No data uploaded"
        elif state == "Aborted":
            if job.state in TERMINAL_STATES:
                raise ApiError(
                    409, "INVALIDJOBSTATE", f"Job is already finished. Current state: {job.state}"
                )
            job.state = "Aborted"
        else:
            raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state: {state}")
        job.modified_at = self.clock.time()
        return ApiResponse(200, job.info(full=False))

    def get(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        self.advance(job)
        return ApiResponse(200, job.info(full=True))

    def advance(self, job: IngestJob) -> None:
        """One poll of a closed job: move it along and process it when its time has come."""
        if job.state not in ("UploadComplete", "InProgress") or job.closed_at is None:
            return
        job.polls += 1
        state = self.job_clock.next_state(job.polls, self.clock.monotonic() - job.closed_at)
        if state == "JobComplete":
            self.process(job)
        else:
            job.state = state
        job.modified_at = self.clock.time()

    def delete(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        if job.state not in TERMINAL_STATES and job.state != "Open":
            raise ApiError(409, "INVALIDJOBSTATE", f"Cannot delete a job in state {job.state}")
        for path in job.directory.iterdir():
            path.unlink()
        job.directory.rmdir()
        del self.jobs[job.id]
        return ApiResponse(204)

    # -- processing ---------------------------------------------------------------------------

    def _rows(self, job: IngestJob) -> Iterator[list[str]]:
        for path in job.uploads:
            with path.open(newline="", encoding="utf-8-sig") as handle:
                reader = csv.reader(handle, delimiter=job.delimiter)
                next(reader, None)
                for row in reader:
                    if row:
                        yield row

    def process(self, job: IngestJob) -> None:
        """Apply every uploaded row; write the success and failure files."""
        sobject = self.org.sobject(job.object_name)
        assert sobject is not None
        assert job.header is not None
        columns: list[FieldDef] = []
        for name in job.header:
            fdef = sobject.field(name.strip())
            if fdef is None:
                job.state = "Failed"
                job.error_message = f"InvalidBatch : Field name not found : {name}"
                return
            columns.append(fdef)
        header = ",".join(_quote(h) for h in job.header)
        with (
            job.success_path.open("w", newline="", encoding="utf-8") as ok_file,
            job.failure_path.open("w", newline="", encoding="utf-8") as bad_file,
        ):
            ok_file.write(f'"sf__Id","sf__Created",{header}{job.newline}')
            bad_file.write(f'"sf__Id","sf__Error",{header}{job.newline}')
            ok = csv.writer(ok_file, lineterminator=job.newline)
            bad = csv.writer(bad_file, lineterminator=job.newline)
            for row in self._rows(job):
                job.processed += 1
                try:
                    record_id, created = self._apply(job, sobject, columns, row)
                except RecordError as exc:
                    job.failed += 1
                    fields = ",".join(exc.fields)
                    message = f"{exc.code}:{exc.message}:{fields} --"
                    bad.writerow([_row_id(columns, row), message, *row])
                    continue
                except MultipleMatches as exc:
                    job.failed += 1
                    message = (
                        f"DUPLICATE_EXTERNAL_ID:external id matched {len(exc.ids)} records: --"
                    )
                    bad.writerow(["", message, *row])
                    continue
                ok.writerow([record_id, "true" if created else "false", *row])
        job.state = "JobComplete"

    def _apply(
        self, job: IngestJob, sobject: SObjectDef, columns: list[FieldDef], row: list[str]
    ) -> tuple[str, bool]:
        if len(row) != len(columns):
            raise RecordError(
                "INVALID_FIELD", f"Row has {len(row)} columns, the header has {len(columns)}"
            )
        body: dict[str, object] = {}
        record_id = ""
        for fdef, cell in zip(columns, row, strict=True):
            if fdef.name == "Id":
                record_id = cell
            elif cell == "#N/A":
                body[fdef.name] = None
            elif cell != "":
                body[fdef.name] = cell
        user = job.created_by
        operation = job.operation
        if operation in ("update", "delete", "hardDelete") and not record_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified", ["Id"])
        if not self.apply_to_store:
            return self._dry_run(sobject, operation, body, record_id)
        if operation == "insert":
            return str(self.org.create(sobject, body, user)["Id"]), True
        if operation == "update":
            return str(self.org.update(sobject, record_id, body, user)["Id"]), False
        if operation in ("delete", "hardDelete"):
            return self.org.delete(sobject, record_id, hard=operation == "hardDelete"), False
        external = job.external_id_field or "Id"
        value = record_id if external == "Id" else str(body.get(external) or "")
        if not value:
            raise RecordError("MISSING_ARGUMENT", f"{external} not specified", [external])
        record, created = self.org.upsert(sobject, external, value, body, user)
        return str(record["Id"]), created

    def _dry_run(
        self, sobject: SObjectDef, operation: str, body: dict[str, object], record_id: str
    ) -> tuple[str, bool]:
        if operation in ("insert", "upsert"):
            validate_write(
                sobject, body, existing=None, schema=self.org.schema, lookup=self.org.store.get
            )
            return make_id(sobject.key_prefix, next(self._dry_ids), seeded=False), True
        return record_id, False

    # -- results ------------------------------------------------------------------------------

    def _finished(self, job: IngestJob) -> None:
        if job.state != "JobComplete":
            raise ApiError(
                412,
                "JOB_NOT_COMPLETE",
                "can only download results of successfully completed bulk job with status: "
                f"JOB_COMPLETE. Current status: {status_name(job.state)}",
            )

    def successful_results(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        self._finished(job)
        return ApiResponse(200, file=job.success_path)

    def failed_results(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        self._finished(job)
        return ApiResponse(200, file=job.failure_path)

    def unprocessed_records(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        job = self.job(groups[0])
        out = io.StringIO()
        if job.header is not None:
            writer = csv.writer(out, delimiter=job.delimiter, lineterminator=job.newline)
            writer.writerow(job.header)
            if job.state in ("Aborted", "Failed"):
                for row in self._rows(job):
                    writer.writerow(row)
        return ApiResponse(200, text=out.getvalue())


def _quote(value: str) -> str:
    return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n\r') else value


def _row_id(columns: list[FieldDef], row: list[str]) -> str:
    for fdef, cell in zip(columns, row, strict=False):
        if fdef.name == "Id":
            return cell
    return ""
