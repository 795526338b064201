"""The Salesforce emulator: a Starlette app plus the state and controls tests reach for.

Reading the request path top to bottom: ``/services/oauth2/*`` is the OAuth server;
``GET /services/data`` lists versions; everything under ``/services/data/vXX.X/`` goes through
:meth:`SalesforceEmulator._api`, which checks the version (404 unknown, 410 retired), the session
(401 ``INVALID_SESSION_ID``), the daily quota and the long-running request limit (403
``REQUEST_LIMIT_EXCEEDED``), waits the emulated latency on the injected clock, dispatches to the
router and stamps ``Sforce-Limit-Info`` on the answer.

Use it in process with ``httpx2.ASGITransport(app=emulator.app)`` or on loopback with
:func:`~.server.run_salesforce_emulator`.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.clock import Clock, system_clock

from .api_errors import ApiError, error_item, not_found
from .bulk_common import JobClock, job_id_factory
from .bulk_ingest import IngestService
from .bulk_query import QueryJobService
from .composite import CompositeRoutes
from .config import ConnectedApp, EmulatedUser, SalesforceEmulatorConfig, parse_version
from .limits import ApiLimits
from .oauth import OAuthServer
from .org import Org
from .query import QueryService, parse_batch_size
from .rest import ApiRequest, ApiResponse, Router
from .rotation import ConnectedAppRotation
from .schema import Record, default_schema
from .seed import SeedData, SeedSpec
from .sessions import Session, SessionStore
from .sobjects import SObjectRoutes, record_error_to_api
from .validation import RecordError, ValidationRule

__all__ = ["SalesforceEmulator", "create_salesforce_app", "version_label"]

_SEASONS = ("Winter", "Spring", "Summer")
_INVALID_SESSION = [error_item("INVALID_SESSION_ID", "Session expired or invalid")]


def version_label(major: int) -> str:
    """The release name of API version ``major`` (20 → "Winter '11", 62 → "Winter '25")."""
    index = major - 20
    return f"{_SEASONS[index % 3]} '{11 + index // 3:02d}"


def _json(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")).encode(),
        status_code=status,
        media_type="application/json;charset=UTF-8",
        headers=dict(headers or {}),
    )


class SalesforceEmulator:
    """One emulated org: ``.app`` to serve, state to assert on, methods to steer it."""

    def __init__(self, config: SalesforceEmulatorConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.schema = default_schema()
        self.org = Org(self.schema, config.seed, clock, admin_user_id="")
        self.user_ids: dict[str, str] = {}
        for user in config.users:
            self._insert_user(user)
        self.org.seed.owner_id = next(iter(self.user_ids.values()), "")
        self.sessions = SessionStore(config.org_id, clock, config.session_timeout)
        self.oauth = OAuthServer(config, self.sessions, clock, self.user_ids)
        self.limits = ApiLimits(
            clock,
            config.daily_api_limit,
            used=config.api_usage_start,
            long_threshold=config.long_request_threshold,
            max_long=config.max_concurrent_long_requests,
        )
        self.latency = config.latency
        self.latency_rules: list[tuple[str, float]] = []
        self.requests: list[tuple[str, str, int]] = []
        self._directory = Path(tempfile.mkdtemp(prefix="sf-emulator-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self._directory, True)

        self.router = Router()
        self.queries = QueryService(
            self.org, batch_size=config.query_batch_size, max_cursors=config.max_open_cursors
        )
        SObjectRoutes(
            self.org,
            instance_url=config.instance_url,
            upsert_created_since=config.upsert_created_since,
        ).register(self.router)
        CompositeRoutes(self.org, self.router).register(self.router)
        job_clock = JobClock(
            config.bulk_polls_until_in_progress,
            config.bulk_polls_until_complete,
            config.bulk_processing_seconds,
        )
        job_ids = job_id_factory()
        self.ingest = IngestService(
            self.org,
            clock,
            self._directory,
            job_clock,
            apply_to_store=config.bulk_apply_to_store,
            job_ids=job_ids,
        )
        self.ingest.register(self.router)
        self.query_jobs = QueryJobService(self.queries, clock, job_clock, job_ids=job_ids)
        self.query_jobs.register(self.router)
        self.router.add("GET", r"/", self._resources)
        self.router.add("GET", r"/limits", self._limits)
        self.router.add("GET", r"/query", self._query)
        self.router.add("GET", r"/queryAll", self._query)
        self.router.add("GET", r"/query/([0-9A-Za-z]+)-(\d+)", self._query_more)
        self.router.add("GET", r"/queryAll/([0-9A-Za-z]+)-(\d+)", self._query_more)
        self.rotation = ConnectedAppRotation(self)  # emulator-only admin API (rotation.py)

        self.app = Starlette(
            routes=[
                Route("/services/oauth2/token", self._token, methods=["POST"]),
                Route("/services/oauth2/authorize", self._authorize, methods=["GET"]),
                Route("/services/oauth2/revoke", self._revoke, methods=["POST"]),
                Route("/services/data", self._versions, methods=["GET"]),
                Route("/services/data/", self._versions, methods=["GET"]),
                Route(
                    "/services/data/{version}",
                    self._api,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                ),
                Route(
                    "/services/data/{version}/{rest:path}",
                    self._api,
                    methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
                ),
            ]
        )

    # -- controls for tests -------------------------------------------------------------------

    def close(self) -> None:
        """Remove the emulator's temporary files (Bulk uploads and results)."""
        self._cleanup()

    def __enter__(self) -> SalesforceEmulator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def expire_all_sessions(self) -> int:
        """Invalidate every access token now; returns how many were live."""
        return self.sessions.expire_all()

    def set_api_quota(self, limit: int, used: int = 0) -> None:
        """Set the daily API allocation and how much of it is already spent."""
        self.limits.daily_limit = limit
        self.limits.used = used

    def set_long_request_limit(self, max_concurrent: int, threshold: float | None = None) -> None:
        """Set the concurrent long-running request limit (and the threshold, seconds)."""
        self.limits.max_long = max_concurrent
        if threshold is not None:
            self.limits.long_threshold = threshold

    def set_latency(self, seconds: float, *, path_contains: str | None = None) -> None:
        """Emulated latency for every REST request, or for paths containing ``path_contains``."""
        if path_contains is None:
            self.latency = seconds
        else:
            self.latency_rules.append((path_contains, seconds))

    def add_user(self, user: EmulatedUser) -> str:
        """Add a user who can sign in; returns their ``005`` id."""
        user_id = self._insert_user(user)
        self.oauth.users[user.username.lower()] = user
        return user_id

    def add_connected_app(self, app: ConnectedApp) -> None:
        """Register (or replace) a connected app."""
        self.oauth.add_app(app)

    def add_validation_rule(
        self,
        sobject: str,
        condition: Callable[[Record], bool],
        message: str,
        *,
        field: str | None = None,
    ) -> None:
        """Fail writes of ``sobject`` with FIELD_CUSTOM_VALIDATION_EXCEPTION when ``condition``."""
        self.org.rules.append(ValidationRule(sobject, condition, message, field))

    def seed(self, spec: SeedSpec) -> None:
        """Replace the seeded data set (writes made so far stay in the overlay)."""
        self.org.seed = SeedData(
            self.schema, spec, anchor=self.org.now(), owner_id=self.org.seed.owner_id
        )
        self.org.store.seed = self.org.seed

    def insert(self, sobject: str, values: Mapping[str, object]) -> str:
        """Create a record as the admin user (validated like the API); returns its id."""
        sobject_def = self.schema.get(sobject)
        if sobject_def is None:
            raise KeyError(f"unknown sObject type {sobject!r}")
        record = self.org.create(sobject_def, values, self.admin_user_id)
        return str(record["Id"])

    def record(self, record_id: str) -> Record | None:
        """The stored record ``record_id``, deleted or not (for assertions)."""
        found = self.org.store.locate(record_id)
        return None if found is None else found[1]

    @property
    def admin_user_id(self) -> str:
        """The id of the first configured user."""
        return next(iter(self.user_ids.values()))

    @property
    def api_usage(self) -> int:
        """Calls counted against the daily allocation so far."""
        return self.limits.used

    @property
    def supported_versions(self) -> list[str]:
        """Every version ``GET /services/data`` lists, oldest first."""
        oldest = parse_version(self.config.oldest_supported_version) or (31, 0)
        latest = parse_version(self.config.latest_version) or (62, 0)
        return [f"{major}.0" for major in range(oldest[0], latest[0] + 1)]

    def _insert_user(self, user: EmulatedUser) -> str:
        sobject = self.schema.get("User")
        assert sobject is not None
        values: dict[str, object] = {
            "Username": user.username,
            "FirstName": user.first_name,
            "LastName": user.last_name,
            "Email": user.email or user.username,
            "Alias": (user.first_name[:1] + user.last_name)[:8] or "user",
        }
        creator = next(iter(self.user_ids.values()), "")
        record = self.org.create(sobject, values, creator)
        user_id = str(record["Id"])
        if not creator:
            # The first user created themselves (and owns everything seeded).
            record["CreatedById"] = record["LastModifiedById"] = user_id
        self.user_ids[user.username.lower()] = user_id
        return user_id

    # -- OAuth --------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        reply = self.oauth.token(form, request.headers.get("authorization"))
        self.requests.append(("POST", "/services/oauth2/token", reply.status))
        return _json(reply.status, reply.body)

    async def _authorize(self, request: Request) -> Response:
        reply = self.oauth.authorize(dict(request.query_params))
        if reply.location is not None:
            return RedirectResponse(reply.location, status_code=302)
        return _json(reply.status, reply.body)

    async def _revoke(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        if not self.sessions.revoke(form.get("token", "")):
            return _json(
                400,
                {
                    "error": "unsupported_token_type",
                    "error_description": "this token type is not supported",
                },
            )
        return Response(status_code=200)

    # -- REST ---------------------------------------------------------------------------------

    async def _versions(self, request: Request) -> Response:
        body = [
            {
                "label": version_label(int(float(v))),
                "url": f"/services/data/v{v}",
                "version": v,
            }
            for v in self.supported_versions
        ]
        return _json(200, body)

    def _check_version(self, raw: str) -> str:
        parsed = parse_version(raw[1:]) if raw.startswith("v") else None
        if parsed is None or f"{parsed[0]}.{parsed[1]}" != raw[1:]:
            raise not_found()
        oldest = parse_version(self.config.oldest_supported_version) or (31, 0)
        latest = parse_version(self.config.latest_version) or (62, 0)
        if parsed < oldest:
            raise ApiError(
                410,
                "GONE",
                f"Version {raw[1:]} of the API has been retired. Use version "
                f"{self.config.oldest_supported_version} or later.",
            )
        if parsed > latest or parsed[1] != 0:
            raise not_found()
        return raw[1:]

    def _session(self, request: Request) -> Session | None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() not in ("bearer", "oauth") or not token.strip():
            return None
        return self.sessions.validate(token.strip())

    def _latency_for(self, path: str) -> float:
        for fragment, seconds in reversed(self.latency_rules):
            if fragment in path:
                return seconds
        return self.latency

    async def _api(self, request: Request) -> Response:
        path = "/" + request.path_params.get("rest", "")
        try:
            version = self._check_version(request.path_params["version"])
        except ApiError as exc:
            return self._finish(request, exc.status, _json(exc.status, exc.body))
        session = self._session(request)
        if session is None:
            return self._finish(request, 401, _json(401, _INVALID_SESSION))
        try:
            ticket = self.limits.admit()
        except ApiError as exc:
            return self._finish(
                request, exc.status, _json(exc.status, exc.body, self._limit_headers())
            )
        try:
            await self.clock.sleep(self._latency_for(path))
            response = await self._dispatch(request, path, version, session)
        except ApiError as exc:
            response = ApiResponse(exc.status, exc.body)
        except RecordError as exc:  # pragma: no cover - handlers translate these
            error = record_error_to_api(exc)
            response = ApiResponse(error.status, error.body)
        finally:
            self.limits.release(ticket)
        return self._finish(request, response.status, self._render(response))

    async def _dispatch(
        self, request: Request, path: str, version: str, session: Session
    ) -> ApiResponse:
        parts = path.strip("/").split("/")
        if (
            request.method == "PUT"
            and len(parts) == 4
            and parts[:2] == ["jobs", "ingest"]
            and parts[3] == "batches"
        ):
            return await self.ingest.upload(parts[2], request.stream())
        raw = await request.body()
        body: object = None
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise ApiError(
                    400, "JSON_PARSER_ERROR", "The request body is not valid JSON"
                ) from None
        api_request = ApiRequest(
            method=request.method,
            path=path,
            version=version,
            params=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            user_id=session.user_id,
        )
        return self.router.dispatch(api_request)

    def _limit_headers(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": self.limits.header()}

    def _render(self, response: ApiResponse) -> Response:
        headers = {**response.headers, **self._limit_headers()}
        if response.file is not None:
            return FileResponse(
                response.file, status_code=response.status, media_type="text/csv", headers=headers
            )
        if response.text is not None:
            return Response(
                response.text, status_code=response.status, media_type="text/csv", headers=headers
            )
        if response.body is None:
            return Response(status_code=response.status, headers=headers)
        return _json(response.status, response.body, headers)

    def _finish(self, request: Request, status: int, response: Response) -> Response:
        self.requests.append((request.method, request.url.path, status))
        return response

    # -- small resources ----------------------------------------------------------------------

    def _resources(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        base = f"/services/data/v{request.version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs")
        return ApiResponse(200, {name: f"{base}/{name}" for name in names})

    def _limits(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        return ApiResponse(200, self.limits.resource())

    def _query(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        text = request.params.get("q")
        if not text:
            raise ApiError(400, "MALFORMED_QUERY", "A query string has to be specified")
        batch = parse_batch_size(
            request.headers.get("sforce-query-options"), self.config.query_batch_size
        )
        body = self.queries.run(
            text,
            include_deleted=request.path.rstrip("/").endswith("queryAll"),
            version=request.version,
            batch_size=batch,
        )
        return ApiResponse(200, body)

    def _query_more(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        return ApiResponse(200, self.queries.more(groups[0], int(groups[1]), request.version))


def create_salesforce_app(
    config: SalesforceEmulatorConfig | None = None, *, clock: Clock | None = None
) -> SalesforceEmulator:
    """A new emulated org; serve ``emulator.app``, call ``emulator.close()`` when done."""
    return SalesforceEmulator(config or SalesforceEmulatorConfig(), clock or system_clock)
