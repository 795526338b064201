"""The Slack emulator: an ASGI app (Starlette) with inspectable state and control methods.

Routes::

    GET|POST /api/<method>                     Web API methods (see ``HANDLERS``)
    POST     /upload/<file_id>                 upload URL of files.getUploadURLExternal
    POST     /services/<team>/<hook>/<secret>  incoming webhooks
    GET      /oauth/v2/authorize               auto-approving authorize step (redirects with code)

One call runs: envelope parsing › token check (``not_authed``, ``invalid_auth``,
``token_revoked``, ``token_expired``) › the method's tier limit per workspace and app (429 +
``Retry-After``) › the method's scopes (``missing_scope`` with ``needed``/``provided``) › the
handler. Use it in process with ``httpx2.ASGITransport(app=emulator.app)`` or over loopback with
:func:`connectors.testing.slack.server.run_slack_emulator`.
"""

# token_type is Slack's field name ("bot"/"user"), not a secret.
# ruff: noqa: S105, S107

from __future__ import annotations

from collections import Counter
from urllib.parse import urlencode

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from connectors.clock import Clock, SystemClock
from connectors.testing.slack import (
    methods_auth,
    methods_chat,
    methods_conversations,
    methods_files,
    methods_users,
)
from connectors.testing.slack.api import HANDLERS, MethodContext
from connectors.testing.slack.catalog import MethodCatalog, load_catalog
from connectors.testing.slack.config import SlackEmulatorConfig
from connectors.testing.slack.envelope import (
    SlackApiError,
    error_response,
    json_response,
    parse_request,
)
from connectors.testing.slack.events import event_callback, post_signed, url_verification
from connectors.testing.slack.ratelimit import BucketLimiter, format_retry_after
from connectors.testing.slack.rotation import AppSecretRotation
from connectors.testing.slack.seed import build_state
from connectors.testing.slack.state import (
    Channel,
    IncomingWebhook,
    JSONObject,
    OAuthCode,
    SlackApp,
    Workspace,
)
from connectors.testing.slack.tokens import IssuedToken, authenticate, issue_token
from connectors.testing.slack.webhooks import receive_webhook

__all__ = ["SlackEmulator", "create_slack_app"]

_METHOD_MODULES = (methods_auth, methods_chat, methods_conversations, methods_files, methods_users)
_NON_MARKETPLACE_SLOW = ("conversations.history", "conversations.replies")


class SlackEmulator:
    """A faithful-where-it-matters Slack Web API. ``.app`` is the ASGI application."""

    def __init__(
        self,
        config: SlackEmulatorConfig | None = None,
        *,
        clock: Clock | None = None,
        catalog: MethodCatalog | None = None,
    ) -> None:
        self.config = config or SlackEmulatorConfig()
        self.clock: Clock = clock or SystemClock()
        self.catalog = catalog or load_catalog()
        self.state = build_state(self.config)
        #: Turn rate enforcement off (or on) at any time, e.g. per test.
        self.rate_limits_enabled = self.config.rate_limits
        #: Web API calls received, by method name (also counts refused calls).
        self.calls: Counter[str] = Counter()
        self._limiter = BucketLimiter(self.clock, self.config.time_scale)
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/upload/{file_id}", self._upload, methods=["POST", "PUT"]),
                Route("/services/{team}/{hook}/{secret}", self._webhook, methods=["POST"]),
                Route("/oauth/v2/authorize", self._authorize, methods=["GET"]),
            ]
        )
        self.rotation = AppSecretRotation(self)  # emulator-only admin API (rotation.py)

    # --- the Web API --------------------------------------------------------------------------

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        self.calls[method] += 1
        entry = HANDLERS.get(method)
        if entry is None:
            return json_response(
                {"ok": False, "error": "unknown_method", "req_method": method}, status=404
            )
        fn, authenticated = entry
        try:
            parsed = await parse_request(request)
            token = None
            if authenticated:
                token = authenticate(self.state, parsed.token, self.clock.time())
                self._check_tier(method, token.team_id, token.app_id)
                spec = self.catalog.methods.get(method)
                needed = spec.scopes_for(token.token_type) if spec else ()
                ctx = MethodContext(self, method, parsed.args, token, request)
                if needed:
                    ctx.require_scope(*needed)
            else:
                ctx = MethodContext(self, method, parsed.args, None, request)
            ctx.basic_auth = parsed.basic_auth
            ctx.warnings.extend(parsed.warnings)
            body = fn(ctx)
        except SlackApiError as error:
            return error_response(error)
        result: JSONObject = {"ok": True, **body}
        if ctx.warnings or ctx.messages:
            metadata = result.get("response_metadata")
            meta: JSONObject = dict(metadata) if isinstance(metadata, dict) else {}
            if ctx.warnings:
                result["warning"] = ",".join(ctx.warnings)
                meta["warnings"] = list(ctx.warnings)
            if ctx.messages:
                meta["messages"] = list(ctx.messages)
            result["response_metadata"] = meta
        return json_response(result)

    def _check_tier(self, method: str, team_id: str, app_id: str) -> None:
        if not self.rate_limits_enabled:
            return
        per_minute: int | None
        if method in _NON_MARKETPLACE_SLOW and not self.config.marketplace_app:
            per_minute = 1
        elif method == "chat.postMessage":
            per_minute = self.config.post_message_workspace_per_minute
        else:
            spec = self.catalog.methods.get(method)
            per_minute = spec.per_minute if spec else None
            if per_minute is None:
                per_minute = self.config.special_per_minute.get(method)
        if per_minute is None:
            return
        wait = self._limiter.take(("tier", team_id, app_id, method), per_minute / 60.0, per_minute)
        if wait is not None:
            raise self._ratelimited(wait)

    def _ratelimited(self, wait: float) -> SlackApiError:
        headers = {"Retry-After": self.retry_after(wait)}
        return SlackApiError("ratelimited", status=429, headers=headers)

    def retry_after(self, wait: float) -> str:
        """The ``Retry-After`` header value for a wait of ``wait`` clock seconds."""
        return format_retry_after(wait, integer=self.config.integer_retry_after)

    def post_message_wait(self, team_id: str, channel_id: str) -> float | None:
        """Take a token from a channel's posting bucket; the wait when it is empty."""
        if not self.rate_limits_enabled:
            return None
        return self._limiter.take(
            ("post", team_id, channel_id),
            self.config.post_message_per_second,
            self.config.post_message_burst,
        )

    def limit_post_message(self, team_id: str, channel_id: str) -> None:
        """chat.postMessage's per-channel limit: raises the 429 ``ratelimited`` answer."""
        wait = self.post_message_wait(team_id, channel_id)
        if wait is not None:
            raise self._ratelimited(wait)

    def reset_rate_limits(self) -> None:
        """Refill every bucket."""
        self._limiter.reset()

    # --- other routes -------------------------------------------------------------------------

    async def _upload(self, request: Request) -> Response:
        return await methods_files.receive_upload(request, self.state)

    async def _webhook(self, request: Request) -> Response:
        return await receive_webhook(request, self)

    async def _authorize(self, request: Request) -> Response:
        params = request.query_params
        app = self.state.app_by_client_id(params.get("client_id", ""))
        if app is None:
            return PlainTextResponse("invalid_client_id", status_code=400)
        redirect_uri = params.get("redirect_uri") or app.redirect_uri
        if not redirect_uri:
            return PlainTextResponse("bad_redirect_uri", status_code=400)
        scopes = [s for s in params.get("scope", "").split(",") if s]
        user_scopes = [s for s in params.get("user_scope", "").split(",") if s]
        code = self.create_oauth_code(
            scopes=scopes,
            user_scopes=user_scopes,
            redirect_uri=params.get("redirect_uri"),
            client_id=app.client_id,
        )
        query = {"code": code}
        if "state" in params:
            query["state"] = params["state"]
        separator = "&" if "?" in redirect_uri else "?"
        return RedirectResponse(f"{redirect_uri}{separator}{urlencode(query)}", status_code=302)

    # --- inspection and control -----------------------------------------------------------------

    @property
    def workspace(self) -> Workspace:
        """The seeded workspace (``config.team_id``)."""
        return self.state.workspaces[self.config.team_id]

    @property
    def default_app(self) -> SlackApp:
        return self.state.apps[self.config.app_id]

    def channel(self, name_or_id: str) -> Channel:
        """A channel of the seeded workspace by id or name (``general`` or ``#general``)."""
        ws = self.workspace
        found = ws.channels.get(name_or_id) or ws.channel_by_name(name_or_id)
        if found is None:
            raise KeyError(f"no channel {name_or_id!r} in {ws.id}")
        return found

    def issue_token(
        self,
        *,
        scopes: tuple[str, ...] | list[str] | None = None,
        token_type: str = "bot",
        user_id: str | None = None,
        rotating: bool | None = None,
        lifetime: float | None = None,
    ) -> IssuedToken:
        """Mint a token for the default app (default scopes: the configured bot scopes)."""
        app = self.default_app
        chosen = frozenset(self.config.bot_scopes if scopes is None else scopes)
        if user_id is None:
            user_id = app.bot_user_id if token_type == "bot" else next(iter(self.workspace.users))
        return issue_token(
            self.state,
            app,
            team_id=self.config.team_id,
            user_id=user_id,
            token_type=token_type,
            scopes=chosen,
            now=self.clock.time(),
            rotating=rotating,
            lifetime=lifetime,
        )

    def expire_tokens(self, *, include_non_rotating: bool = False) -> int:
        """Make rotating tokens (and, if asked, every token) expired now; returns how many.

        This is the hook fault injection calls for "token expiry at the N-th call".
        """
        now = self.clock.time()
        count = 0
        for token in self.state.tokens.values():
            if token.expires_at is None and not include_non_rotating:
                continue
            if token.expires_at is None or token.expires_at > now:
                token.expires_at = now
                count += 1
        return count

    def revoke_token(self, value: str) -> None:
        """Revoke a token: later calls with it answer ``token_revoked``."""
        self.state.tokens[value].revoked = True

    def create_oauth_code(
        self,
        *,
        scopes: tuple[str, ...] | list[str] = ("chat:write",),
        user_scopes: tuple[str, ...] | list[str] = (),
        redirect_uri: str | None = None,
        client_id: str | None = None,
        user_id: str | None = None,
        lifetime: float = 600.0,
    ) -> str:
        """A code as if a user approved the install; exchange it at ``oauth.v2.access``."""
        code_value = f"{self.state.next_id('code', 6)}.{self.config.team_id.lower()}"
        self.state.oauth_codes[code_value] = OAuthCode(
            code=code_value,
            client_id=client_id or self.default_app.client_id,
            team_id=self.config.team_id,
            scopes=frozenset(scopes),
            user_scopes=frozenset(user_scopes),
            user_id=user_id or next(iter(self.workspace.users)),
            redirect_uri=redirect_uri,
            expires_at=self.clock.time() + lifetime,
        )
        return code_value

    def create_incoming_webhook(self, channel: str) -> str:
        """Add an incoming webhook into ``channel``; returns its path ``/services/T/B/secret``."""
        target = self.channel(channel)
        hook_id = self.state.next_id("BH", 7)
        secret = f"{self.state.next_id('hook', 6)}{target.id.lower()}"
        hook = IncomingWebhook(self.config.team_id, hook_id, secret, target.id)
        self.state.webhooks[hook.path] = hook
        return hook.path

    @property
    def webhook_paths(self) -> list[str]:
        """Paths of every incoming webhook."""
        return list(self.state.webhooks)

    # --- events API ---------------------------------------------------------------------------

    async def deliver_event(
        self,
        url: str | None,
        event: JSONObject,
        *,
        client: httpx2.AsyncClient,
        signing_secret: str | None = None,
        timestamp: int | None = None,
        event_id: str | None = None,
        retry_num: int | None = None,
    ) -> httpx2.Response:
        """POST a signed ``event_callback`` envelope carrying ``event`` to ``url``.

        ``url=None`` uses ``config.events_url`` (the app's configured Request URL).
        """
        target = url or self.config.events_url
        if not target:
            raise ValueError("no url given and config.events_url is not set")
        app = self.default_app
        now = int(self.clock.time())
        payload = event_callback(
            event=event,
            team_id=self.config.team_id,
            api_app_id=app.app_id,
            event_id=event_id or self.state.next_id("Ev", 10),
            event_time=now,
            verification_token=app.verification_token,
            authorized_user=app.bot_user_id,
        )
        return await post_signed(
            client,
            target,
            payload,
            signing_secret=signing_secret or app.signing_secret,
            timestamp=now if timestamp is None else timestamp,
            retry_num=retry_num,
        )

    async def verify_url(
        self,
        url: str,
        *,
        client: httpx2.AsyncClient,
        challenge: str | None = None,
        signing_secret: str | None = None,
    ) -> httpx2.Response:
        """Send the ``url_verification`` handshake; a correct app echoes the challenge."""
        app = self.default_app
        payload = url_verification(
            challenge=challenge or f"challenge-{self.state.next_id('ch', 6)}",
            verification_token=app.verification_token,
        )
        return await post_signed(
            client,
            url,
            payload,
            signing_secret=signing_secret or app.signing_secret,
            timestamp=int(self.clock.time()),
        )


def create_slack_app(
    config: SlackEmulatorConfig | None = None, *, clock: Clock | None = None
) -> SlackEmulator:
    """Build an emulator; its ASGI app is ``.app``."""
    return SlackEmulator(config, clock=clock)
