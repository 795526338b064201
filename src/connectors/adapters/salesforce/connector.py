"""The Salesforce connector: REST (query, sObjects, describe, limits), Composite, sObject
Collections and Bulk API 2.0, for one tenant's org.

::

    sf = connectors.get_connector("salesforce", tenant_id="acme-corp")
    contacts = sf.query("SELECT Id, Name, Email FROM Contact WHERE Email = :email", email=x)

Connecting obtains a session with the configured OAuth flow (:mod:`.auth`), takes the
``instance_url`` from the token response and checks ``api_version`` against the org's
``GET /services/data``. Every request then goes through the framework pipeline with
:class:`~.auth.SalesforceSessionAuth` (one refresh on ``INVALID_SESSION_ID``) and the
:class:`~.classify.SalesforceClassifier`, which also feeds ``Sforce-Limit-Info`` into the
quota state, the ``rate_limit_remaining`` metric and, below ``throttle_below_pct``, a client-side
rate limit. Bulk work lives in :mod:`.bulk`; composite and collections helpers in their modules.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import aclosing
from typing import Any, Final, Literal
from urllib.parse import quote as url_quote

import httpx2

from connectors.auth import TokenGrant, TokenManager
from connectors.base import Connector, ConnectorRuntime, operation
from connectors.errors import (
    AuthError,
    ConnectorError,
    IncompatibleVersion,
    InvalidRequest,
    LifecycleError,
    RateLimited,
)
from connectors.http import ACCEPT, ConnectorHttpClient, ResponseClassifier, RuleResult
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.resilience import RateLimit

from .auth import SalesforceSessionAuth, build_grant
from .bulk import BulkApi, BulkIngestResult, BulkJobInfo, IngestOperation, ProgressCallback
from .classify import DAILY_QUOTA, SalesforceClassifier, parse_errors
from .collections import chunked, parse_results, typed_records
from .composite import CompositeResult, Subrequest, build_body
from .csvstream import RowSource
from .limits import QuotaState, Usage
from .paging import query_pages, response_json
from .results import Record, SaveResult, save_result
from .settings import SalesforceSettings
from .soql import SoqlValue, bind

__all__ = ["SalesforceConnector"]

_NAME: Final = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")
_ID: Final = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")
_FROM: Final = re.compile(r"\bFROM\s+([A-Za-z][A-Za-z0-9_]*)", re.IGNORECASE)
_SCOPES: Final = ("api",)
JobSource = BulkIngestResult | str | Sequence[str]


def _soql_target(soql: str = "", **_: object) -> str | None:
    match = _FROM.search(soql)
    return match.group(1) if match else None


def _checked_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise InvalidRequest(
            f"{what} {value!r} is not a Salesforce API name",
            hint="use the API name, e.g. 'Contact' or 'External_Id__c'",
        )
    return value


def _checked_id(value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidRequest(
            f"{value!r} is not a Salesforce record id", hint="ids have 15 or 18 characters"
        )
    return value


def _deleted_is_done(response: httpx2.Response, classifier: ResponseClassifier) -> RuleResult:
    """A retried delete that finds the record already deleted has succeeded."""
    if response.status_code == 404 and any(
        i.code == "ENTITY_IS_DELETED" for i in parse_errors(response)
    ):
        return ACCEPT
    return None


def _job_ids(jobs: JobSource) -> tuple[str, ...]:
    if isinstance(jobs, BulkIngestResult):
        return jobs.job_ids
    if isinstance(jobs, str):
        return (jobs,)
    return tuple(jobs)


class SalesforceConnector(Connector):
    """Salesforce REST, Composite, sObject Collections and Bulk API 2.0."""

    name = "salesforce"
    version = "1.0.0"
    #: Upsert ``created`` flags, collection upserts and Bulk 2.0 locators need v46.0+.
    provider_api_versions = tuple(f"{v}.0" for v in range(62, 45, -1))

    def __init__(self, runtime: ConnectorRuntime) -> None:
        super().__init__(runtime)
        self.quota = QuotaState(runtime.clock)
        self._settings: SalesforceSettings | None = None
        self._token_client: httpx2.AsyncClient | None = None
        self._grant: TokenGrant | None = None
        self._tokens: TokenManager | None = None
        self._instance_url = ""
        self._classifier = SalesforceClassifier(
            clock=runtime.clock, quota=self.quota, on_usage=self._record_usage
        )
        self._delete_classifier = self._classifier.with_rules(_deleted_is_done)
        self._bulk: BulkApi | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def settings(self) -> SalesforceSettings:
        """The validated settings (after connect)."""
        if self._settings is None:
            raise LifecycleError("the Salesforce connector is not connected", connector=self.name)
        return self._settings

    @property
    def instance_url(self) -> str:
        """The org's API host, from the token response (or the ``instance_url`` setting)."""
        return self._instance_url

    @property
    def base_path(self) -> str:
        """``/services/data/vXX.X``."""
        return f"/services/data/v{self.settings.api_version}"

    async def on_connect(self) -> None:
        settings = SalesforceSettings.from_mapping(
            self.runtime.settings, instance=self.instance_name
        )
        self._settings = settings
        self.quota.degraded_below = settings.degraded_below_pct / 100
        self._classifier.daily_retry_after = settings.daily_quota_retry_after
        self._delete_classifier = self._classifier.with_rules(_deleted_is_done)
        clock = self.runtime.clock
        self._token_client = httpx2.AsyncClient(transport=self.runtime.transport, timeout=30.0)
        try:
            tokens = self.runtime.token_manager()
            self._tokens = tokens
            self._grant = build_grant(settings, self._token_client, clock)
            tokens.register(self.tenant, settings.credential, self._grant)
            token = await tokens.get_token(self.tenant, settings.credential, grant=self._grant)
            instance = settings.instance_url or token.instance_url
            if not instance:
                raise AuthError(
                    "the token response carried no instance_url",
                    connector=self.instance_name,
                    hint="set the instance_url setting to the org's My Domain URL",
                )
            self._instance_url = instance.rstrip("/")
            await self._check_version(settings.api_version)
        except BaseException:
            await self._close_token_client()
            raise
        self._bulk = BulkApi(
            self._send,
            self.base_path,
            clock,
            chunk_bytes=settings.bulk_chunk_bytes,
            poll_interval=settings.bulk_poll_interval,
            poll_max_interval=settings.bulk_poll_max_interval,
            page_size=settings.bulk_query_page_size,
        )

    async def on_disconnect(self) -> None:
        await self._close_token_client()

    async def _close_token_client(self) -> None:
        if self._token_client is not None:
            client, self._token_client = self._token_client, None
            await client.aclose()

    async def _check_version(self, wanted: str) -> None:
        response = await self.http.request(
            "GET",
            "/services/data",
            ctx=self._new_context(),
            operation="connect",
            idempotent=True,
        )
        body = response.json()
        listed = [str(v.get("version")) for v in body if isinstance(v, dict)]
        if wanted not in listed:
            raise IncompatibleVersion(
                f"Salesforce API version {wanted} is not available in this org (retired or not "
                f"yet released); the org supports: {', '.join(listed) or 'none listed'}",
                connector=self.instance_name,
                tenant=self.tenant,
                hint=f"set api_version to one of them, e.g. {listed[-1] if listed else '62.0'}",
            )
        if wanted not in self.provider_api_versions:
            raise IncompatibleVersion(
                f"the Salesforce connector {self.version} needs API version "
                f"{self.provider_api_versions[-1]} or later, got {wanted}",
                connector=self.instance_name,
                tenant=self.tenant,
                hint=f"set api_version to {self.provider_api_versions[0]}",
            )

    def create_http_client(self) -> ConnectorHttpClient:
        assert self._tokens is not None
        assert self._grant is not None
        return ConnectorHttpClient(
            self.instance_name,
            base_url=self._instance_url,
            pipeline=self.runtime.pipeline,
            classifier=self._classifier,
            auth=SalesforceSessionAuth(
                self._tokens, self.tenant, self.settings.credential, grant=self._grant
            ),
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            observer=self._observe_http,
            headers={"Accept": "application/json"},
        )

    # --- plumbing -------------------------------------------------------------------------------

    def _record_usage(self, usage: Usage) -> None:
        self.runtime.metrics.rate_limit_remaining(
            self.instance_name, self.tenant, "api-usage", usage.remaining
        )

    def _throttle(self) -> tuple[RateLimit, ...]:
        below = self.settings.throttle_below_pct
        share = self.quota.remaining_fraction()
        if below is None or share is None or share * 100 >= below:
            return ()
        return (RateLimit("api-usage-throttle", rate=self.settings.throttle_rate, burst=1.0),)

    async def _send(
        self, method: str, url: str, *, gate: bool = True, **kwargs: Any
    ) -> httpx2.Response:
        """One request of the running operation: quota gate, throttle, then the pipeline."""
        if gate:
            wait = self.quota.exhausted_for()
            if wait > 0:
                raise RateLimited(
                    "the org's daily API request quota is exhausted; not calling Salesforce",
                    retry_after=wait,
                    quota=DAILY_QUOTA,
                    provider_code="REQUEST_LIMIT_EXCEEDED",
                    hint="calls resume when the rolling 24-hour window frees quota",
                )
        return await self.request(method, url, rate_limits=self._throttle(), **kwargs)

    async def _json(self, method: str, url: str, *, gate: bool = True, **kwargs: Any) -> object:
        return response_json(await self._send(method, url, gate=gate, **kwargs))

    def _api(self, path: str) -> str:
        return f"{self.base_path}/{path}"

    def _pages(
        self, resource: str, soql: str, batch_size: int | None
    ) -> AsyncGenerator[Mapping[str, object], None]:
        """The query's pages, the next one requested while this one is read (:mod:`.paging`)."""
        size = batch_size or self.settings.query_batch_size
        headers = {"Sforce-Query-Options": f"batchSize={size}"} if size else None

        def first() -> Awaitable[httpx2.Response]:
            return self._send("GET", self._api(resource), params={"q": soql}, headers=headers)

        def fetch(next_url: str) -> Awaitable[httpx2.Response]:
            return self._send("GET", next_url, headers=headers)

        return query_pages(first, fetch)

    async def _materialise(self, resource: str, soql: str) -> list[Record]:
        limit = self.settings.max_materialize
        records: list[Record] = []
        async with aclosing(self._pages(resource, soql, None)) as pages:
            async for page in pages:
                total = page.get("totalSize")
                if (isinstance(total, int) and total > limit) or len(records) > limit:
                    raise InvalidRequest(
                        f"the query matches {total} records, more than max_materialize ({limit}) "
                        "that query() holds in memory",
                        provider_code="TOO_MANY_RECORDS",
                        hint="stream it with query_iter() (or bulk_query() for millions), add a "
                        "LIMIT, or raise the max_materialize setting",
                    )
                batch = page.get("records")
                if isinstance(batch, list):
                    records.extend(r for r in batch if isinstance(r, dict))
        return records

    # --- query ----------------------------------------------------------------------------------

    @operation(idempotent=True, scopes=_SCOPES, audit_target=_soql_target)
    async def query(self, soql: str, /, **params: SoqlValue) -> list[Record]:
        """Every record of a SOQL query, ``:name`` parameters bound from ``params``.

        Refuses to hold more than ``max_materialize`` records (default 50,000): use
        :meth:`query_iter` for large results.
        """
        return await self._materialise("query", bind(soql, params))

    @operation(idempotent=True, scopes=_SCOPES, audit_target=_soql_target)
    async def query_all(self, soql: str, /, **params: SoqlValue) -> list[Record]:
        """Like :meth:`query`, including deleted and archived records (``queryAll``)."""
        return await self._materialise("queryAll", bind(soql, params))

    @operation(idempotent=True, scopes=_SCOPES, audit_target=_soql_target)
    async def query_iter(
        self, soql: str, /, *, batch_size: int | None = None, **params: SoqlValue
    ) -> AsyncIterator[Record]:
        """Stream a query's records page by page (``nextRecordsUrl``); memory stays flat.

        The next page is requested as soon as the current one arrives, so Salesforce builds it
        while the caller reads this one: at most one request in flight and one page waiting.
        ``batch_size`` (200–2000) is sent as ``Sforce-Query-Options: batchSize=N``.
        """
        if batch_size is not None and not 200 <= batch_size <= 2000:
            raise InvalidRequest(f"batch_size {batch_size} is outside 200..2000")
        async with aclosing(self._pages("query", bind(soql, params), batch_size)) as pages:
            async for page in pages:
                batch = page.get("records")
                del page  # read, then dropped before the next page is decoded (paging.py)
                if isinstance(batch, list):
                    for record in batch:
                        if isinstance(record, dict):
                            yield record
                del batch

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def count(self, sobject: str, where: str | None = None, /, **params: SoqlValue) -> int:
        """``SELECT COUNT() FROM sobject [WHERE where]`` with ``where`` parameters bound."""
        soql = f"SELECT COUNT() FROM {_checked_name(sobject, 'sObject')}"  # noqa: S608
        if where:
            soql += f" WHERE {where}"
        body = await self._json("GET", self._api("query"), params={"q": bind(soql, params)})
        total = body.get("totalSize") if isinstance(body, Mapping) else None
        return int(total) if isinstance(total, int) else 0

    # --- sObjects -------------------------------------------------------------------------------

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def get(
        self, sobject: str, record_id: str, fields: Sequence[str] | None = None
    ) -> Record:
        """One record by id (``fields`` limits the columns)."""
        params = None
        if fields:
            params = {"fields": ",".join(_checked_name(f, "field") for f in fields)}
        url = self._api(f"sobjects/{_checked_name(sobject, 'sObject')}/{_checked_id(record_id)}")
        body = await self._json("GET", url, params=params)
        return dict(body) if isinstance(body, Mapping) else {}

    @operation(idempotent=False, scopes=_SCOPES, audit_target="sobject")
    async def create(self, sobject: str, data: Mapping[str, object]) -> SaveResult:
        """Create one record; never retried after it may have reached Salesforce."""
        url = self._api(f"sobjects/{_checked_name(sobject, 'sObject')}")
        return save_result(await self._json("POST", url, json=dict(data)), created=True)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def update(self, sobject: str, record_id: str, data: Mapping[str, object]) -> None:
        """Update fields of one record (setting the same values twice is harmless)."""
        url = self._api(f"sobjects/{_checked_name(sobject, 'sObject')}/{_checked_id(record_id)}")
        await self._send("PATCH", url, json=dict(data))

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def delete(self, sobject: str, record_id: str) -> None:
        """Delete one record; a record that is already deleted counts as done."""
        url = self._api(f"sobjects/{_checked_name(sobject, 'sObject')}/{_checked_id(record_id)}")
        await self._send("DELETE", url, classifier=self._delete_classifier)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def upsert(
        self, sobject: str, external_id_field: str, value: str, data: Mapping[str, object]
    ) -> SaveResult:
        """Create or update the record whose ``external_id_field`` is ``value``.

        Several matches raise :class:`~connectors.errors.Conflict` with ``candidates``.
        """
        if not isinstance(value, str) or not value:
            raise InvalidRequest("the external id value must be a non-empty string")
        field = _checked_name(external_id_field, "external id field")
        body = {k: v for k, v in data.items() if k.lower() != field.lower()}
        url = self._api(
            f"sobjects/{_checked_name(sobject, 'sObject')}/{field}/{url_quote(value, safe='')}"
        )
        response = await self._send("PATCH", url, json=body)
        if response.status_code == 204 or not response.content:
            return SaveResult(None, True, False)
        return save_result(response.json(), created=response.status_code == 201)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def describe(self, sobject: str) -> dict[str, object]:
        """The full describe of one sObject (fields, picklists, relationships)."""
        url = self._api(f"sobjects/{_checked_name(sobject, 'sObject')}/describe")
        body = await self._json("GET", url)
        return dict(body) if isinstance(body, Mapping) else {}

    @operation(idempotent=True, scopes=_SCOPES)
    async def describe_global(self) -> dict[str, object]:
        """Every sObject of the org (``GET /sobjects``)."""
        body = await self._json("GET", self._api("sobjects"))
        return dict(body) if isinstance(body, Mapping) else {}

    @operation(idempotent=True, scopes=_SCOPES)
    async def limits(self) -> dict[str, dict[str, int]]:
        """The org's limits as ``{name: {"Max": n, "Remaining": n}}`` (``DailyApiRequests``...)."""
        body = await self._json("GET", self._api("limits"), gate=False)
        return dict(body) if isinstance(body, Mapping) else {}

    # --- composite and collections --------------------------------------------------------------

    @operation(idempotent=False, scopes=_SCOPES)
    async def composite(
        self, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
    ) -> CompositeResult:
        """Up to 25 subrequests in one API call; ``@{ref.id}`` references earlier results."""
        body = build_body(subrequests, self.base_path, all_or_none=all_or_none)
        return CompositeResult.parse(await self._json("POST", self._api("composite"), json=body))

    async def _collection(
        self, method: str, url: str, records: list[dict[str, object]], all_or_none: bool
    ) -> list[SaveResult]:
        results: list[SaveResult] = []
        for chunk in chunked(records):
            body = {"allOrNone": all_or_none, "records": list(chunk)}
            results.extend(parse_results(await self._json(method, url, json=body), len(chunk)))
        return results

    @operation(idempotent=False, scopes=_SCOPES, audit_target="sobject")
    async def create_many(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        sobject: str | None = None,
        all_or_none: bool = False,
    ) -> list[SaveResult]:
        """Create records with sObject Collections (200 per call); one result per record."""
        typed = typed_records(records, sobject and _checked_name(sobject, "sObject"))
        return await self._collection("POST", self._api("composite/sobjects"), typed, all_or_none)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def update_many(
        self,
        records: Sequence[Mapping[str, object]],
        *,
        sobject: str | None = None,
        all_or_none: bool = False,
    ) -> list[SaveResult]:
        """Update records (each with ``Id``) 200 per call; one result per record."""
        typed = typed_records(records, sobject and _checked_name(sobject, "sObject"))
        return await self._collection("PATCH", self._api("composite/sobjects"), typed, all_or_none)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def upsert_many(
        self,
        sobject: str,
        external_id_field: str,
        records: Sequence[Mapping[str, object]],
        *,
        all_or_none: bool = False,
    ) -> list[SaveResult]:
        """Upsert records by external id, 200 per call; results carry ``created``."""
        name = _checked_name(sobject, "sObject")
        field = _checked_name(external_id_field, "external id field")
        url = self._api(f"composite/sobjects/{name}/{field}")
        return await self._collection("PATCH", url, typed_records(records, name), all_or_none)

    @operation(idempotent=True, scopes=_SCOPES)
    async def delete_many(
        self, record_ids: Sequence[str], *, all_or_none: bool = False
    ) -> list[SaveResult]:
        """Delete records by id, 200 per call; one result per id."""
        ids = [_checked_id(i) for i in record_ids]
        results: list[SaveResult] = []
        for chunk in chunked(ids):
            params = {"ids": ",".join(chunk), "allOrNone": "true" if all_or_none else "false"}
            body = await self._json("DELETE", self._api("composite/sobjects"), params=params)
            results.extend(parse_results(body, len(chunk)))
        return results

    # --- Bulk API 2.0 ---------------------------------------------------------------------------

    @property
    def bulk(self) -> BulkApi:
        if self._bulk is None:
            raise LifecycleError("the Salesforce connector is not connected", connector=self.name)
        return self._bulk

    async def _ingest(
        self,
        operation_name: IngestOperation,
        sobject: str,
        rows: RowSource,
        external_id_field: str | None,
        on_progress: ProgressCallback | None,
    ) -> BulkIngestResult:
        return await self.bulk.ingest(
            operation_name,
            _checked_name(sobject, "sObject"),
            rows,
            external_id_field=external_id_field
            and _checked_name(external_id_field, "external id field"),
            on_progress=on_progress,
            idempotent=operation_name != "insert",
        )

    @operation(idempotent=False, scopes=_SCOPES, audit_target="sobject")
    async def bulk_insert(
        self, sobject: str, rows: RowSource, *, on_progress: ProgressCallback | None = None
    ) -> BulkIngestResult:
        """Insert rows (dicts, sync or async iterable, or a CSV path) with Bulk API 2.0."""
        return await self._ingest("insert", sobject, rows, None, on_progress)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def bulk_update(
        self, sobject: str, rows: RowSource, *, on_progress: ProgressCallback | None = None
    ) -> BulkIngestResult:
        """Update rows (each with ``Id``) with Bulk API 2.0."""
        return await self._ingest("update", sobject, rows, None, on_progress)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def bulk_upsert(
        self,
        sobject: str,
        external_id_field: str,
        rows: RowSource,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> BulkIngestResult:
        """Upsert rows by ``external_id_field`` with Bulk API 2.0."""
        return await self._ingest("upsert", sobject, rows, external_id_field, on_progress)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def bulk_delete(
        self, sobject: str, rows: RowSource, *, on_progress: ProgressCallback | None = None
    ) -> BulkIngestResult:
        """Delete rows (``Id`` column) to the recycle bin with Bulk API 2.0."""
        return await self._ingest("delete", sobject, rows, None, on_progress)

    @operation(idempotent=True, scopes=_SCOPES, audit_target="sobject")
    async def bulk_hard_delete(
        self, sobject: str, rows: RowSource, *, on_progress: ProgressCallback | None = None
    ) -> BulkIngestResult:
        """Delete rows permanently (needs the "Bulk API Hard Delete" permission)."""
        return await self._ingest("hardDelete", sobject, rows, None, on_progress)

    @operation(idempotent=True, scopes=_SCOPES)
    async def bulk_job_states(
        self, job_id: str, kind: Literal["ingest", "query"] = "ingest"
    ) -> AsyncIterator[BulkJobInfo]:
        """Poll a Bulk 2.0 job until it finishes, yielding each observed state."""
        async for info in self.bulk.watch(_checked_id(job_id), kind):
            yield info

    async def _results(self, jobs: JobSource, which: str) -> AsyncIterator[dict[str, str]]:
        for job_id in _job_ids(jobs):
            async for row in self.bulk.results(_checked_id(job_id), which):
                yield row

    @operation(idempotent=True, scopes=_SCOPES)
    async def bulk_successful_results(self, jobs: JobSource) -> AsyncIterator[dict[str, str]]:
        """Rows that succeeded (``sf__Id``, ``sf__Created``, then the input columns)."""
        async for row in self._results(jobs, "successfulResults"):
            yield row

    @operation(idempotent=True, scopes=_SCOPES)
    async def bulk_failed_results(self, jobs: JobSource) -> AsyncIterator[dict[str, str]]:
        """Rows that failed (``sf__Id``, ``sf__Error``, then the input columns)."""
        async for row in self._results(jobs, "failedResults"):
            yield row

    @operation(idempotent=True, scopes=_SCOPES)
    async def bulk_unprocessed_records(self, jobs: JobSource) -> AsyncIterator[dict[str, str]]:
        """Rows an aborted or failed job never processed."""
        async for row in self._results(jobs, "unprocessedrecords"):
            yield row

    @operation(idempotent=True, scopes=_SCOPES, audit_target=_soql_target)
    async def bulk_query(
        self,
        soql: str,
        /,
        *,
        include_deleted: bool = False,
        page_size: int | None = None,
        on_progress: ProgressCallback | None = None,
        **params: SoqlValue,
    ) -> AsyncIterator[dict[str, str]]:
        """Run a Bulk 2.0 query job and stream its rows (CSV values as strings)."""
        async for row in self.bulk.query(
            bind(soql, params),
            include_deleted=include_deleted,
            page_size=page_size,
            on_progress=on_progress,
        ):
            yield row

    # --- health ---------------------------------------------------------------------------------

    async def health_check(self) -> Health:
        """``GET /limits``: checks ``auth`` (the session works) and ``api_quota``."""
        now = self.runtime.clock.time()
        try:
            body = await self.limits()
        except AuthError as exc:
            return Health.from_checks(
                [
                    HealthCheck("auth", HealthStatus.UNHEALTHY, exc.message, now),
                    self.quota.check(),
                ]
            )
        except RateLimited:
            # Salesforce authenticated the session before refusing on quota.
            return Health.from_checks(
                [
                    HealthCheck("auth", HealthStatus.HEALTHY, "session accepted", now),
                    self.quota.check(),
                ]
            )
        except ConnectorError as exc:
            return Health.from_checks(
                [
                    HealthCheck("auth", HealthStatus.UNKNOWN, f"probe failed: {exc.code}", now),
                    self.quota.check(),
                ]
            )
        daily = body.get("DailyApiRequests")
        if isinstance(daily, Mapping) and self.quota.exhausted_for() <= 0:
            maximum, remaining = daily.get("Max"), daily.get("Remaining")
            if isinstance(maximum, int) and isinstance(remaining, int):
                self.quota.usage = Usage(maximum - remaining, maximum)
                self.quota.observed_at = now
        return Health.from_checks(
            [HealthCheck("auth", HealthStatus.HEALTHY, "session accepted", now), self.quota.check()]
        )
