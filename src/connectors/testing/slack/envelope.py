"""Slack's request and response envelope: argument parsing, ``ok``/``error`` bodies, cursors.

Requests: arguments come from the query string and the body, which may be
``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``application/json`` (JSON
needs the token in ``Authorization: Bearer``; a ``token`` field in a JSON body is ignored, as on
Slack). A JSON body without ``charset`` gets Slack's ``missing_charset`` warning.

Responses: HTTP 200 with ``{"ok": true, ...}`` or ``{"ok": false, "error": "<code>"}``; warnings
as a top-level ``warning`` plus ``response_metadata.warnings``; 429 with ``Retry-After`` for rate
limits. Cursors are opaque base64 of ``<kind>:<key>`` like Slack's (``next_ts:1512085861.000543``,
``user:U061NFTT2``); anything else is ``invalid_cursor``.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from connectors.testing.slack.state import JSONObject

__all__ = [
    "ParsedRequest",
    "SlackApiError",
    "decode_cursor",
    "encode_cursor",
    "error_response",
    "json_response",
    "parse_request",
]

_JSON_MEDIA = "application/json; charset=utf-8"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_VALID_CHARSETS = ("utf-8", "iso-8859-1")


class SlackApiError(Exception):
    """An ``ok: false`` answer: ``code`` is Slack's error string, ``extra`` more top-level keys."""

    def __init__(
        self,
        code: str,
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        messages: list[str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.status = status
        self.headers = headers or {}
        self.messages = messages or []
        self.extra = extra

    def body(self) -> JSONObject:
        body: JSONObject = {"ok": False, "error": self.code, **self.extra}
        if self.messages:
            body["response_metadata"] = {"messages": list(self.messages)}
        return body


@dataclass(slots=True)
class ParsedRequest:
    """Arguments of one Web API call, the token it carried and envelope warnings."""

    args: dict[str, object]
    token: str | None
    basic_auth: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)


def json_response(
    body: JSONObject, status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """Serialise like Slack: compact JSON, ``application/json; charset=utf-8``."""
    content = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(content, status_code=status, media_type=_JSON_MEDIA, headers=headers)


def error_response(error: SlackApiError) -> Response:
    return json_response(error.body(), status=error.status, headers=error.headers)


def _media_type(content_type: str) -> tuple[str, str | None]:
    parts = [p.strip() for p in content_type.split(";")]
    charset = None
    for param in parts[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    return parts[0].lower(), charset


def _bearer(request: Request) -> tuple[str | None, tuple[str, str] | None]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    if scheme.lower() == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        user, sep, password = decoded.partition(":")
        if sep:
            return None, (user, password)
    return None, None


async def parse_request(request: Request) -> ParsedRequest:
    """Collect arguments from query and body; raise :class:`SlackApiError` on a bad envelope."""
    args: dict[str, object] = dict(request.query_params)
    bearer, basic = _bearer(request)
    warnings: list[str] = []
    body_token: str | None = None
    if request.method == "POST":
        raw_type = request.headers.get("content-type")
        body = await request.body()
        if raw_type is None:
            if body:
                raise SlackApiError("missing_post_type")
        else:
            media, charset = _media_type(raw_type)
            if charset is not None and charset not in _VALID_CHARSETS:
                raise SlackApiError("invalid_charset")
            if media == "application/json":
                if charset is None:
                    warnings.append("missing_charset")
                if body.strip():
                    try:
                        payload = json.loads(body)
                    except (ValueError, UnicodeDecodeError):
                        raise SlackApiError("invalid_json") from None
                    if not isinstance(payload, dict):
                        raise SlackApiError("invalid_json")
                    args.update({k: v for k, v in payload.items() if k != "token"})
            elif media in _FORM_TYPES:
                try:
                    form = await request.form()
                except Exception:
                    raise SlackApiError("invalid_form_data") from None
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        continue
                    args[key] = value
                token_field = args.pop("token", None)
                body_token = token_field if isinstance(token_field, str) else None
            elif media != "text/plain":
                raise SlackApiError("invalid_post_type")
    else:
        token_field = args.pop("token", None)
        body_token = token_field if isinstance(token_field, str) else None
    args.pop("token", None)
    return ParsedRequest(args=args, token=bearer or body_token, basic_auth=basic, warnings=warnings)


def encode_cursor(kind: str, key: str) -> str:
    """An opaque cursor, base64 of ``kind:key`` as Slack's are."""
    return base64.b64encode(f"{kind}:{key}".encode()).decode()


def decode_cursor(cursor: str, kind: str) -> str:
    """The key inside a cursor of ``kind``; ``invalid_cursor`` for anything else."""
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise SlackApiError("invalid_cursor") from None
    prefix, sep, key = text.partition(":")
    if not sep or prefix != kind or not key:
        raise SlackApiError("invalid_cursor")
    return key
