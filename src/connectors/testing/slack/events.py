"""Events API delivery: signed ``event_callback`` and ``url_verification`` POSTs to an app.

Slack signs each request with the app's signing secret: ``X-Slack-Request-Timestamp: <unix
seconds>`` and ``X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<timestamp>:<raw body>">``.
Receivers must check the signature over the raw body and reject timestamps more than five
minutes away. :func:`slack_signature` is that computation; the emulator uses it to deliver
events so inbound verification can be tested end to end.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx2

from connectors.testing.slack.state import JSONObject

__all__ = ["event_callback", "post_signed", "slack_signature", "url_verification"]

USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


def slack_signature(signing_secret: str, timestamp: int | str, body: bytes) -> str:
    """``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}`` with the signing secret."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(signing_secret.encode(), base, hashlib.sha256).hexdigest()


def event_callback(
    *,
    event: JSONObject,
    team_id: str,
    api_app_id: str,
    event_id: str,
    event_time: int,
    verification_token: str,
    authorized_user: str,
) -> JSONObject:
    """The ``event_callback`` envelope Slack wraps every event in."""
    return {
        "token": verification_token,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": event_time,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": authorized_user,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": f"4-{event_id}",
    }


def url_verification(*, challenge: str, verification_token: str) -> JSONObject:
    """The handshake Slack sends when an Events API request URL is configured."""
    return {"token": verification_token, "challenge": challenge, "type": "url_verification"}


async def post_signed(
    client: httpx2.AsyncClient,
    url: str,
    payload: JSONObject,
    *,
    signing_secret: str,
    timestamp: int,
    retry_num: int | None = None,
    retry_reason: str | None = None,
) -> httpx2.Response:
    """POST ``payload`` as JSON with Slack's signature headers; returns the app's response."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": slack_signature(signing_secret, timestamp, body),
    }
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    return await client.post(url, content=body, headers=headers)
