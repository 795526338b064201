"""Slack's answers as typed errors: the ``200 {"ok": false, "error": ...}`` envelope and 429s.

Slack reports application errors with HTTP 200, so the status says nothing: the ``error`` code
decides. The table, by what the caller should do::

    not_authed invalid_auth token_expired account_inactive     AuthenticationFailed
    token_revoked invalid_refresh_token                        ReauthorizationRequired
    missing_scope                                              ScopeDenied (needed / provided)
    not_in_channel no_permission access_denied ...             AuthorizationError
    ratelimited rate_limited (and HTTP 429)                    RateLimited (retry_after)
    channel_not_found user_not_found users_not_found
      message_not_found thread_not_found file_not_found        NotFound
    invalid_arguments invalid_blocks msg_too_long no_text ...  InvalidRequest (fields from
                                                               response_metadata.messages)
    is_archived already_... cant_update_message ...            Conflict / PermanentError
    fatal_error internal_error service_unavailable
      request_timeout                                          ServiceUnavailable
    anything else                                              PermanentError

A refused call was not processed: Slack answers 429 *instead of* acting, so ``RateLimited`` is
marked ``request_sent = False`` and even ``chat.postMessage`` (not idempotent) is retried after
``Retry-After``. A non-JSON answer with status 200 (an HTML error page) is ``ServiceUnavailable``.
Messages name the method and the code, never a body beyond Slack's own ``[ERROR]`` lines, and
those pass through the redactor.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Final

import httpx2

from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectorError,
    FieldError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ReauthorizationRequired,
    ScopeDenied,
    ServiceUnavailable,
)
from connectors.http import ACCEPT, ResponseClassifier, RuleResult
from connectors.observability.redaction import redact_text

__all__ = [
    "AUTH_ERRORS",
    "INVALID_REQUEST_ERRORS",
    "NOT_FOUND_ERRORS",
    "SERVER_ERRORS",
    "SlackClassifier",
    "error_for",
    "method_of",
    "slack_body",
]

AUTH_ERRORS: Final = frozenset({"not_authed", "invalid_auth", "token_expired", "account_inactive"})
REAUTH_ERRORS: Final = frozenset({"token_revoked", "invalid_refresh_token", "app_uninstalled"})
PERMISSION_ERRORS: Final = frozenset(
    {
        "not_in_channel",
        "no_permission",
        "access_denied",
        "accesslimited",
        "ekm_access_denied",
        "enterprise_is_restricted",
        "org_login_required",
        "team_access_not_granted",
        "two_factor_setup_required",
        "not_allowed_token_type",
        "restricted_action",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "restricted_action_non_threadable_channel",
        "posting_to_channel_denied",
        "posting_to_general_channel_denied",
        "cant_update_message",
        "cant_delete_message",
        "user_not_in_channel",
    }
)
RATE_ERRORS: Final = frozenset({"ratelimited", "rate_limited", "message_limit_exceeded"})
NOT_FOUND_ERRORS: Final = frozenset(
    {
        "channel_not_found",
        "user_not_found",
        "users_not_found",
        "message_not_found",
        "thread_not_found",
        "file_not_found",
        "team_not_found",
        "unknown_method",
    }
)
INVALID_REQUEST_ERRORS: Final = frozenset(
    {
        "invalid_arguments",
        "invalid_arg_name",
        "invalid_array_arg",
        "invalid_charset",
        "invalid_form_data",
        "invalid_post_type",
        "missing_post_type",
        "invalid_json",
        "json_not_object",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_attachments",
        "msg_too_long",
        "msg_blocks_too_long",
        "no_text",
        "too_many_attachments",
        "markdown_text_conflict",
        "invalid_cursor",
        "invalid_limit",
        "invalid_types",
        "invalid_ts_oldest",
        "invalid_ts_latest",
        "invalid_name",
        "no_item_specified",
        "missing_argument",
        "alt_txt_too_large",
        "snippet_too_large",
        "invalid_channel",
        "channels_limit_exceeded",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "metadata_too_large",
        "invalid_payload",
        "method_not_supported_for_channel_type",
    }
)
CONFLICT_ERRORS: Final = frozenset(
    {
        "is_archived",
        "channel_is_archived",
        "already_reacted",
        "too_many_reactions",
        "already_pinned",
    }
)
SERVER_ERRORS: Final = frozenset(
    {"fatal_error", "internal_error", "service_unavailable", "request_timeout", "rollup_error"}
)

_HINTS: Final[Mapping[str, str]] = {
    "not_in_channel": "invite the bot to the channel, or enable auto_join (needs channels:join)",
    "invalid_auth": "the token is not valid for this workspace; check the credential",
    "not_authed": "no token was sent; configure `token` or `oauth_credential`",
    "token_expired": "the rotating token expired; configure oauth_credential so it is refreshed",
    "token_revoked": "the token was revoked (app uninstalled?); install the app again",
    "channel_not_found": "check the channel id or name, and that the bot can see the channel",
    "is_archived": "the channel is archived",
}
_POINTER: Final = re.compile(r"\[json-pointer:(?P<pointer>[^\]]+)\]")


_PARSED: Final = "connectors.slack.body"


def slack_body(response: httpx2.Response) -> dict[str, object] | None:
    """The JSON object of a (read) response, or ``None`` when it is not one.

    The parsed object is kept in ``response.extensions`` so the classifier and the adapter
    parse each answer once.
    """
    cached = response.extensions.get(_PARSED)
    if isinstance(cached, dict):
        return cached
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(body, dict):
        return None
    response.extensions[_PARSED] = body
    return body


def method_of(response: httpx2.Response) -> str:
    """The Web API method a response answers (the last path segment of its URL)."""
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request
        return "?"
    return path.rsplit("/", 1)[-1] or "?"


def _split(value: object) -> tuple[str, ...]:
    if not isinstance(value, str):
        return ()
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _messages(body: Mapping[str, object]) -> list[str]:
    meta = body.get("response_metadata")
    raw = meta.get("messages") if isinstance(meta, Mapping) else None
    if not isinstance(raw, list):
        return []
    return [redact_text(m)[:300] for m in raw if isinstance(m, str)]


def _fields(messages: Iterable[str], code: str) -> tuple[FieldError, ...]:
    fields: list[FieldError] = []
    for message in messages:
        match = _POINTER.search(message)
        where = match.group("pointer") if match else "request"
        text = _POINTER.sub("", message).replace("[ERROR]", "").strip()
        fields.append(FieldError(where, text or code, code))
    return tuple(fields)


def error_for(
    code: str,
    body: Mapping[str, object],
    *,
    method: str,
    status: int = 200,
    retry_after: float | None = None,
) -> ConnectorError:
    """The typed error for Slack error ``code`` answered by ``method`` (pure)."""
    lead = f"Slack {method} failed: {code}"
    hint = _HINTS.get(code)
    if code in RATE_ERRORS:
        limited = RateLimited(
            lead, retry_after=retry_after, quota=method, status=status, provider_code=code
        )
        limited.request_sent = False  # Slack refused the call instead of processing it
        return limited
    if code == "missing_scope":
        needed = _split(body.get("needed"))
        provided = _split(body.get("provided"))
        return ScopeDenied(
            f"{lead} (needs {', '.join(needed) or 'an unnamed scope'})",
            needed=needed,
            provided=provided,
            status=status,
            provider_code=code,
            hint="add the scope to the Slack app and reinstall it",
        )
    if code in AUTH_ERRORS:
        return AuthenticationFailed(lead, status=status, provider_code=code, hint=hint)
    if code in REAUTH_ERRORS:
        return ReauthorizationRequired(lead, status=status, provider_code=code, hint=hint)
    if code in PERMISSION_ERRORS:
        return AuthorizationError(lead, status=status, provider_code=code, hint=hint)
    if code in NOT_FOUND_ERRORS:
        return NotFound(lead, status=status, provider_code=code, hint=hint)
    if code in SERVER_ERRORS:
        return ServiceUnavailable(lead, retry_after=retry_after, status=status, provider_code=code)
    messages = _messages(body)
    if code in INVALID_REQUEST_ERRORS:
        detail = f" ({'; '.join(messages)})" if messages else ""
        return InvalidRequest(
            lead + detail, fields=_fields(messages, code), status=status, provider_code=code
        )
    if code in CONFLICT_ERRORS:
        return Conflict(lead, status=status, provider_code=code, hint=hint)
    return PermanentError(lead, status=status, provider_code=code, hint=hint)


class SlackClassifier(ResponseClassifier):
    """Classifies Web API responses by the ``ok``/``error`` envelope (429 by status).

    ``accept`` lists error codes that mean success for this request (``already_reacted`` for
    an idempotent reaction); build per-request variants with :meth:`accepting`.
    """

    __slots__ = ("_accept",)

    def __init__(self, *, clock: Clock = system_clock, accept: Iterable[str] = ()) -> None:
        super().__init__(clock=clock, redact=redact_text, provider_code=_provider_code)
        self._accept = frozenset(accept)

    def accepting(self, *codes: str) -> SlackClassifier:
        """A copy that treats ``codes`` as success."""
        clone = SlackClassifier(clock=self._clock, accept=(*self._accept, *codes))
        return clone

    def classify(self, response: httpx2.Response) -> ConnectorError | None:
        status = response.status_code
        if status == 429:
            body = slack_body(response) or {}
            code = body.get("error")
            return error_for(
                code if isinstance(code, str) and code in RATE_ERRORS else "ratelimited",
                body,
                method=method_of(response),
                status=429,
                retry_after=self.retry_after(response),
            )
        if status != 200:
            return super().classify(response)
        verdict = self.judge(response)
        return None if verdict is ACCEPT else verdict

    def judge(self, response: httpx2.Response) -> RuleResult:
        """``ACCEPT`` for ``ok: true`` (or an accepted code), else the error (status 200)."""
        body = slack_body(response)
        if body is None:
            return self.error(
                ServiceUnavailable,
                response,
                f"Slack {method_of(response)} answered HTTP 200 without a JSON object",
            )
        if body.get("ok") is True:
            return ACCEPT
        code = body.get("error")
        if not isinstance(code, str) or not code:
            code = "unknown_error"
        if code in self._accept:
            return ACCEPT
        return error_for(
            code,
            body,
            method=method_of(response),
            retry_after=self.retry_after(response),
        )


def _provider_code(response: httpx2.Response) -> str | None:
    body = slack_body(response)
    code = body.get("error") if body is not None else None
    return code[:64] if isinstance(code, str) and code else None
