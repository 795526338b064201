"""EMULATOR-ONLY admin API: rotate a connected app's consumer secret with an overlap window.

Salesforce has no such REST endpoint (secrets are rotated in Setup or through the Metadata
API); this small API exists so that automated client-secret rotation can be tested end to end.
Every route needs a valid session, like the rest of ``/services/data/vXX.X``::

    POST /services/data/vXX.X/emulator/connectedapp/rotate-secret  {"consumer_key": "..."}
         → 200 {"consumer_key": "...", "consumer_secret": "<new>"}; the old secret stays valid
    POST /services/data/vXX.X/emulator/connectedapp/revoke-old     {"consumer_key": "..."}
         → 204; the old secret stops working
    POST /services/data/vXX.X/emulator/connectedapp/cancel         {"consumer_key": "..."}
         → 204; the new secret is forgotten and the old one is current again

While a rotation is open, ``/services/oauth2/token`` accepts either secret.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .api_errors import ApiError
from .oauth import OAuthReply
from .rest import ApiRequest, ApiResponse

if TYPE_CHECKING:
    from .app import SalesforceEmulator

__all__ = ["ConnectedAppRotation"]

_PREFIX = r"/emulator/connectedapp/"


class ConnectedAppRotation:
    """The emulator-only secret rotation of connected apps (see the module docstring)."""

    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emulator = emulator
        #: Old secrets still accepted, by consumer key.
        self.previous: dict[str, str] = {}
        router = emulator.router
        router.add("POST", _PREFIX + "rotate-secret", self._rotate)
        router.add("POST", _PREFIX + "revoke-old", self._revoke_old)
        router.add("POST", _PREFIX + "cancel", self._cancel)
        original = emulator.oauth.token
        emulator.oauth.token = self._accept_previous(original)  # type: ignore[method-assign,assignment]

    def _key(self, request: ApiRequest) -> str:
        body = request.body
        key = body.get("consumer_key") if isinstance(body, Mapping) else None
        if not isinstance(key, str) or key not in self.emulator.oauth.apps:
            raise ApiError(404, "NOT_FOUND", "unknown consumer_key")
        return key

    def _rotate(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        key = self._key(request)
        if key in self.previous:
            raise ApiError(409, "ROTATION_IN_PROGRESS", "revoke or cancel the open rotation first")
        app = self.emulator.oauth.apps[key]
        new = secrets.token_hex(32).upper()
        self.previous[key] = app.consumer_secret
        self.emulator.add_connected_app(dataclasses.replace(app, consumer_secret=new))
        return ApiResponse(200, {"consumer_key": key, "consumer_secret": new})

    def _revoke_old(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        key = self._key(request)
        if self.previous.pop(key, None) is None:
            raise ApiError(409, "NO_ROTATION", "no rotation is open for this app")
        return ApiResponse(204)

    def _cancel(self, request: ApiRequest, groups: tuple[str, ...]) -> ApiResponse:
        key = self._key(request)
        old = self.previous.pop(key, None)
        if old is None:
            raise ApiError(409, "NO_ROTATION", "no rotation is open for this app")
        app = self.emulator.oauth.apps[key]
        self.emulator.add_connected_app(dataclasses.replace(app, consumer_secret=old))
        return ApiResponse(204)

    def _accept_previous(
        self, token: Callable[[Mapping[str, str], str | None], OAuthReply]
    ) -> Callable[[Mapping[str, str], str | None], OAuthReply]:
        """Wrap the token endpoint: a still-valid old secret is presented as the current one."""

        def handle(form: Mapping[str, str], authorization: str | None) -> OAuthReply:
            form = dict(form)
            if authorization and authorization.lower().startswith("basic "):
                try:
                    decoded = base64.b64decode(authorization[6:].strip()).decode()
                except (binascii.Error, UnicodeDecodeError):
                    return token(form, authorization)
                client_id, _, secret = decoded.partition(":")
                current = self._current_for(client_id, secret)
                if current is not None:
                    raw = f"{client_id}:{current}".encode()
                    authorization = "Basic " + base64.b64encode(raw).decode()
            else:
                current = self._current_for(form.get("client_id", ""), form.get("client_secret"))
                if current is not None:
                    form["client_secret"] = current
            return token(form, authorization)

        return handle

    def _current_for(self, client_id: str, secret: str | None) -> str | None:
        old = self.previous.get(client_id)
        app = self.emulator.oauth.apps.get(client_id)
        if old is None or app is None or secret is None or secret != old:
            return None
        return app.consumer_secret
