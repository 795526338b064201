"""The Slack adapter's call path: settings, authentication, one ``_api`` for every method.

Every call goes through :meth:`SlackApi._api`: it takes the call's limiter keys from
:class:`~connectors.adapters.slack.limits.SlackRateLimits` (tier per method, per channel for
``chat.postMessage``) so the pipeline waits *before* Slack would answer 429, sends the request
with the bot token (static, or rotating through the token manager, and only to the Web API),
lets :class:`~connectors.adapters.slack.classify.SlackClassifier` turn ``ok: false`` into a typed
error, and logs Slack's warnings. :meth:`SlackApi._paginate` follows cursors;
:meth:`SlackApi._resolve` turns channel names into ids.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

from connectors.adapters.slack.auth import ScopedAuth
from connectors.adapters.slack.channels import ChannelDirectory, normalise
from connectors.adapters.slack.classify import SlackClassifier, slack_body
from connectors.adapters.slack.limits import NON_MARKETPLACE_METHODS
from connectors.adapters.slack.models import JsonObject
from connectors.adapters.slack.oauth import SlackOAuthApp
from connectors.adapters.slack.settings import SlackSettings
from connectors.adapters.slack.webhooks import WebhookClassifier
from connectors.auth import SLACK_INVALID_AUTH, BearerAuth, ManagedTokenAuth
from connectors.base import Connector, ConnectorRuntime
from connectors.errors import (
    AuthorizationError,
    ConfigurationError,
    ConnectorError,
    InvalidRequest,
    NotFound,
    ScopeDenied,
)
from connectors.http import ConnectorHttpClient, ResponseClassifier
from connectors.observability.redaction import redact_text
from connectors.resilience import RateLimit

__all__ = ["SlackApi"]

_JSON_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}
_NON_MARKETPLACE_PAGE: Final = 15


class SlackApi(Connector):
    """The Slack adapter's plumbing: settings, the HTTP client, the call path, paging,
    channel names. :class:`~connectors.adapters.slack.connector.SlackConnector` adds the
    operations."""

    def __init__(self, runtime: ConnectorRuntime) -> None:
        super().__init__(runtime)
        clock = self.runtime.clock
        self._settings: SlackSettings | None = None
        self._oauth: SlackOAuthApp | None = None
        self._channels = ChannelDirectory(clock)
        self._classifier = SlackClassifier(clock=clock)
        self._reactions = self._classifier.accepting("already_reacted")
        self._deletions = self._classifier.accepting("message_not_found")
        self._webhooks = WebhookClassifier(clock=clock)
        self._uploads = ResponseClassifier(clock=clock, redact=redact_text)

    # --- configuration --------------------------------------------------------------------------

    @property
    def settings(self) -> SlackSettings:
        """The validated settings (read at connect time)."""
        if self._settings is None:
            self._settings = SlackSettings.from_mapping(self.runtime.settings)
        return self._settings

    async def on_connect(self) -> None:
        self._settings = SlackSettings.from_mapping(self.runtime.settings)
        cfg = self._settings
        self._channels = ChannelDirectory(self.runtime.clock, cfg.channel_cache_ttl)
        if cfg.client_id is not None and cfg.client_secret is not None:
            self._oauth = SlackOAuthApp(
                client_id=cfg.client_id,
                client_secret=cfg.client_secret,
                token_url=cfg.token_url,
                redirect_uri=cfg.redirect_uri,
                scopes=cfg.install_scopes or sorted(self.required_scopes()),
                transport=self.runtime.transport,
                clock=self.runtime.clock,
            )
        if cfg.oauth_credential is not None and self._oauth is not None:
            self.runtime.token_manager().register(
                self.tenant, cfg.oauth_credential, self._oauth.refresh_grant()
            )

    def create_http_client(self) -> ConnectorHttpClient:
        cfg = self.settings
        inner: BearerAuth | ManagedTokenAuth
        if cfg.oauth_credential is not None:
            inner = ManagedTokenAuth(
                self.runtime.token_manager(),
                self.tenant,
                cfg.oauth_credential,
                check=SLACK_INVALID_AUTH,
                grant=None if self._oauth is None else self._oauth.refresh_grant(),
                connector=self.instance_name,
            )
        else:
            assert cfg.token is not None  # SlackSettings guarantees one of the two
            inner = BearerAuth(cfg.token)
        return ConnectorHttpClient(
            self.instance_name,
            base_url=cfg.base_url,
            pipeline=self.runtime.pipeline,
            classifier=self._classifier,
            auth=ScopedAuth(inner, cfg.base_url),
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            observer=self._observe_http,
        )

    # --- the one call path ----------------------------------------------------------------------

    async def _api(
        self,
        method: str,
        *,
        form: Mapping[str, str] | None = None,
        payload: Mapping[str, object] | None = None,
        limits: Sequence[RateLimit] | None = None,
        idempotent: bool | None = None,
        classifier: ResponseClassifier | None = None,
    ) -> JsonObject:
        """POST one Web API method (form or JSON body) and return its ``ok`` body."""
        chosen = self.settings.limits.for_method(method) if limits is None else limits
        if payload is not None:
            response = await self.request(
                "POST",
                method,
                idempotent=idempotent,
                rate_limits=chosen,
                content=json.dumps(payload, separators=(",", ":")).encode(),
                headers=_JSON_HEADERS,
                classifier=classifier,
            )
        else:
            response = await self.request(
                "POST",
                method,
                idempotent=idempotent,
                rate_limits=chosen,
                data=dict(form or {}),
                classifier=classifier,
            )
        body = slack_body(response)
        if body is None:  # an accepted code on a non-JSON answer cannot happen; be safe
            raise InvalidRequest(f"Slack {method} answered without a JSON object")
        if "warning" in body or "response_metadata" in body:
            self._note_warnings(method, body)
        return body

    def _note_warnings(self, method: str, body: Mapping[str, object]) -> None:
        meta = body.get("response_metadata")
        warnings: list[str] = []
        messages: list[str] = []
        if isinstance(meta, Mapping):
            raw = meta.get("warnings")
            if isinstance(raw, list):
                warnings = [w for w in raw if isinstance(w, str)]
            raw = meta.get("messages")
            if isinstance(raw, list):
                messages = [redact_text(m)[:300] for m in raw if isinstance(m, str)]
        top = body.get("warning")
        if isinstance(top, str):
            warnings.extend(w for w in top.split(",") if w and w not in warnings)
        if warnings or messages:
            self._log.warning("slack.warning", method=method, warnings=warnings, messages=messages)

    async def _paginate(
        self, method: str, key: str, form: Mapping[str, str], page_size: int | None
    ) -> AsyncIterator[JsonObject]:
        """Follow ``response_metadata.next_cursor`` until it is empty, yielding ``body[key]``."""
        size = page_size or self.settings.page_size
        if not self.settings.limits.marketplace_app and method in NON_MARKETPLACE_METHODS:
            size = min(size, _NON_MARKETPLACE_PAGE)
        if not 1 <= size <= 1000:
            raise InvalidRequest(f"page_size must be 1..1000, not {size}")
        cursor = ""
        while True:
            args = {**form, "limit": str(size)}
            if cursor:
                args["cursor"] = cursor
            body = await self._api(method, form=args, idempotent=True)
            items = body.get(key)
            if isinstance(items, list):
                for item in items:
                    if isinstance(item, dict):
                        yield item
            meta = body.get("response_metadata")
            following = meta.get("next_cursor") if isinstance(meta, Mapping) else None
            following = following or body.get("next_cursor")
            if not isinstance(following, str) or not following:
                return
            cursor = following

    # --- channels -------------------------------------------------------------------------------

    async def _resolve(self, channel: str) -> str:
        """The id of ``channel`` (an id, or a name with or without ``#``)."""
        found = self._channels.lookup(channel)
        if found is not None:
            return found
        listing: list[JsonObject] = []
        try:
            types = "public_channel,private_channel"
            listing = [
                c
                async for c in self._paginate(
                    "conversations.list", "channels", {"types": types}, 1000
                )
            ]
        except ScopeDenied:  # no groups:read: public channels only
            listing = [
                c
                async for c in self._paginate(
                    "conversations.list", "channels", {"types": "public_channel"}, 1000
                )
            ]
        self._channels.load(listing)
        found = self._channels.lookup(channel)
        if found is None:
            raise NotFound(
                f"no Slack channel named #{normalise(channel)} is visible to the app",
                provider_code="channel_not_found",
                hint="check the name, or pass the channel id",
            )
        return found

    async def _join_for(self, channel: str, cause: ConnectorError) -> str:
        """Join ``channel`` after ``not_in_channel``; re-raise ``cause`` if joining is refused."""
        channel_id = await self._resolve(channel)
        try:
            await self._api("conversations.join", form={"channel": channel_id}, idempotent=True)
        except ScopeDenied as denied:
            cause.add_note(f"auto_join failed: the token lacks {', '.join(denied.missing)}")
            raise cause from denied
        self._log.info("slack.auto_joined", channel=channel_id)
        return channel_id

    @staticmethod
    def _not_in_channel(error: ConnectorError) -> bool:
        return isinstance(error, AuthorizationError) and error.provider_code == "not_in_channel"

    def _require_oauth(self) -> SlackOAuthApp:
        if self._oauth is None:
            raise ConfigurationError(
                "the Slack OAuth flow needs client_id and client_secret settings",
                connector=self.instance_name,
            )
        return self._oauth
