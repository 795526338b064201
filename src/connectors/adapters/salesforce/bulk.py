"""Bulk API 2.0: ingest jobs (streamed uploads) and query jobs (streamed CSV pages).

Ingest: rows are spooled to CSV chunks of at most ``bulk_chunk_bytes`` (≤ 100 MB, the raw size
that stays under Salesforce's 150 MB base64 upload limit) and each chunk becomes one job:
``POST /jobs/ingest`` → ``PUT .../batches`` (streamed from the spool file) → ``PATCH
{"state": "UploadComplete"}``. One job per chunk keeps every job within the per-job limit. Jobs
are then polled (``UploadComplete → InProgress → JobComplete | Failed | Aborted``) with capped
exponential backoff on the connector's clock, reporting each state to ``on_progress``. Results
(``successfulResults``, ``failedResults``, ``unprocessedrecords``) stream back as dicts.

Query: ``POST /jobs/query`` → poll → ``GET .../results?locator=&maxRecords=`` pages, each parsed
as it arrives; ``Sforce-Locator: null`` ends the result set.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, TypeAlias

import httpx2

from connectors.clock import Clock
from connectors.errors import InvalidRequest, PermanentError

from .csvstream import CsvRecordParser, FileBody, RowSource, spool_chunks

__all__ = [
    "TERMINAL_STATES",
    "BulkApi",
    "BulkIngestResult",
    "BulkJobInfo",
    "IngestOperation",
    "ProgressCallback",
]

IngestOperation: TypeAlias = Literal["insert", "update", "upsert", "delete", "hardDelete"]
TERMINAL_STATES: Final = frozenset({"JobComplete", "Failed", "Aborted"})
_DELIMITERS: Final = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^"}


@dataclass(frozen=True, slots=True)
class BulkJobInfo:
    """One observation of a Bulk 2.0 job."""

    id: str
    kind: Literal["ingest", "query"]
    operation: str
    sobject: str
    state: str
    records_processed: int = 0
    records_failed: int = 0
    error_message: str | None = None

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @classmethod
    def parse(cls, body: Mapping[str, object], kind: Literal["ingest", "query"]) -> BulkJobInfo:
        def count(name: str) -> int:
            value = body.get(name)
            return int(value) if isinstance(value, int | float) else 0

        error = body.get("errorMessage")
        return cls(
            id=str(body.get("id", "")),
            kind=kind,
            operation=str(body.get("operation", "")),
            sobject=str(body.get("object", "")),
            state=str(body.get("state", "")),
            records_processed=count("numberRecordsProcessed"),
            records_failed=count("numberRecordsFailed"),
            error_message=error if isinstance(error, str) else None,
        )


@dataclass(frozen=True, slots=True)
class BulkIngestResult:
    """The finished jobs of one ingest call (one job per uploaded chunk)."""

    jobs: tuple[BulkJobInfo, ...]

    @property
    def job_ids(self) -> tuple[str, ...]:
        return tuple(job.id for job in self.jobs)

    @property
    def records_processed(self) -> int:
        return sum(job.records_processed for job in self.jobs)

    @property
    def records_failed(self) -> int:
        return sum(job.records_failed for job in self.jobs)


ProgressCallback: TypeAlias = Callable[[BulkJobInfo], object]


class Sender(Protocol):
    """How the Bulk helper sends a request (the connector's pipeline-backed ``_send``)."""

    def __call__(self, method: str, url: str, **kwargs: Any) -> Awaitable[httpx2.Response]: ...


class BulkApi:
    """Bulk 2.0 jobs through ``send``; ``base`` is ``/services/data/vXX.X``."""

    def __init__(
        self,
        send: Sender,
        base: str,
        clock: Clock,
        *,
        chunk_bytes: int,
        poll_interval: float,
        poll_max_interval: float,
        page_size: int,
    ) -> None:
        self._send = send
        self._base = base
        self._clock = clock
        self.chunk_bytes = chunk_bytes
        self.poll_interval = poll_interval
        self.poll_max_interval = max(poll_max_interval, poll_interval)
        self.page_size = page_size

    # --- ingest --------------------------------------------------------------------------------

    async def ingest(
        self,
        operation: IngestOperation,
        sobject: str,
        rows: RowSource,
        *,
        external_id_field: str | None = None,
        on_progress: ProgressCallback | None = None,
        idempotent: bool,
    ) -> BulkIngestResult:
        """Upload ``rows`` in chunks (one job each), wait for every job, return their infos."""
        if operation == "upsert" and not external_id_field:
            raise InvalidRequest(
                "a bulk upsert needs external_id_field", hint="name the external id field"
            )
        spec: dict[str, object] = {
            "object": sobject,
            "operation": operation,
            "contentType": "CSV",
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
        }
        if external_id_field:
            spec["externalIdFieldName"] = external_id_field
        job_ids: list[str] = []
        async for chunk in spool_chunks(rows, self.chunk_bytes):
            try:
                created = await self._send(
                    "POST", f"{self._base}/jobs/ingest", json=spec, idempotent=idempotent
                )
                info = BulkJobInfo.parse(created.json(), "ingest")
                job_ids.append(info.id)
                await self._send(
                    "PUT",
                    f"{self._base}/jobs/ingest/{info.id}/batches",
                    content=FileBody(chunk),
                    headers={"Content-Type": "text/csv"},
                    idempotent=idempotent,
                )
                await self._send(
                    "PATCH",
                    f"{self._base}/jobs/ingest/{info.id}",
                    json={"state": "UploadComplete"},
                    idempotent=True,
                )
            finally:
                chunk.close()
        if not job_ids:
            raise InvalidRequest("the bulk input has no rows", hint="pass at least one row")
        finished = []
        for job_id in job_ids:
            async for info in self.watch(job_id, "ingest"):
                if on_progress is not None:
                    on_progress(info)
                if info.done:
                    finished.append(info)
        failed = [job for job in finished if job.state != "JobComplete"]
        if failed:
            first = failed[0]
            raise PermanentError(
                f"bulk job {first.id} ended {first.state}: {first.error_message or 'no message'}",
                provider_code="BULK_JOB_" + first.state.upper(),
                hint="read bulk_unprocessed_records for the rows to resubmit",
            )
        return BulkIngestResult(tuple(finished))

    async def watch(
        self, job_id: str, kind: Literal["ingest", "query"]
    ) -> AsyncIterator[BulkJobInfo]:
        """Poll a job until it reaches a terminal state, yielding every observation."""
        delay = self.poll_interval
        while True:
            response = await self._send("GET", f"{self._base}/jobs/{kind}/{job_id}")
            info = BulkJobInfo.parse(response.json(), kind)
            yield info
            if info.done:
                return
            await self._clock.sleep(delay)
            delay = min(max(delay * 2, 0.0), self.poll_max_interval)

    async def results(self, job_id: str, which: str) -> AsyncIterator[dict[str, str]]:
        """One result file of an ingest job, streamed as dicts keyed by its header."""
        async for row in self._csv(f"{self._base}/jobs/ingest/{job_id}/{which}", None):
            yield row

    # --- query ---------------------------------------------------------------------------------

    async def query(
        self,
        soql: str,
        *,
        include_deleted: bool,
        page_size: int | None,
        on_progress: ProgressCallback | None,
    ) -> AsyncIterator[dict[str, str]]:
        """Run a query job and stream its rows (values are CSV strings; empty for null)."""
        created = await self._send(
            "POST",
            f"{self._base}/jobs/query",
            json={
                "operation": "queryAll" if include_deleted else "query",
                "query": soql,
                "contentType": "CSV",
                "columnDelimiter": "COMMA",
                "lineEnding": "LF",
            },
            idempotent=True,
        )
        job = BulkJobInfo.parse(created.json(), "query")
        async for info in self.watch(job.id, "query"):
            if on_progress is not None:
                on_progress(info)
            if info.done and info.state != "JobComplete":
                raise PermanentError(
                    f"bulk query job {info.id} ended {info.state}: "
                    f"{info.error_message or 'no message'}",
                    provider_code="BULK_JOB_" + info.state.upper(),
                )
        locator: str | None = ""
        size = page_size or self.page_size
        while locator is not None:
            params = {"maxRecords": str(size)}
            if locator:
                params["locator"] = locator
            holder: list[str | None] = [None]
            async for row in self._csv(f"{self._base}/jobs/query/{job.id}/results", params, holder):
                yield row
            found = holder[0]
            locator = None if not found or found == "null" else found

    async def _csv(
        self,
        url: str,
        params: Mapping[str, str] | None,
        locator: list[str | None] | None = None,
    ) -> AsyncIterator[dict[str, str]]:
        response = await self._send("GET", url, params=params, stream=True)
        try:
            if locator is not None:
                locator[0] = response.headers.get("Sforce-Locator")
            parser = CsvRecordParser()
            header: Sequence[str] | None = None
            async for text in response.aiter_text():
                for row in parser.feed(text):
                    if header is None:
                        header = row
                        continue
                    yield dict(zip(header, row, strict=False))
            for row in parser.close():
                if header is None:
                    header = row
                    continue
                yield dict(zip(header, row, strict=False))
        finally:
            await response.aclose()
