"""EMULATOR-ONLY admin API: rotate an app's client secret or signing secret with an overlap.

Slack has no such Web API method (secrets are regenerated on the app's settings page, and the
old one stops working at once); these methods exist so that automated, zero-downtime secret
rotation can be tested end to end. The caller authenticates as the app, with ``client_id`` and
``client_secret`` (form fields or HTTP Basic, like ``oauth.v2.access``; during an overlap either
client secret works)::

    POST /api/emulator.apps.rotateClientSecret   → {"ok": true, "client_id", "client_secret"}
    POST /api/emulator.apps.rotateSigningSecret  → {"ok": true, "client_id", "signing_secret"}
    POST /api/emulator.apps.revokeOld   secret=client_secret|signing_secret (default client)
         → the old secret stops working (a signing secret: the new one signs from now on)
    POST /api/emulator.apps.cancel      secret=client_secret|signing_secret (default client)
         → the new secret is forgotten and the old one is the only valid one again

A second rotation of the same secret before ``revokeOld``/``cancel`` is ``rotation_in_progress``;
``revokeOld``/``cancel`` without one is ``no_rotation``.

During a client-secret overlap ``oauth.v2.access`` accepts either secret (``app.client_secret``
is the new one). During a signing-secret overlap the emulator keeps *signing* events with the old
secret, which every receiver still knows, while :meth:`AppSecretRotation.verify_signature`
accepts either; ``revokeOld`` switches signing to the new secret. That is the order in which a
receiver can move to a new signing secret without rejecting a single delivery.
"""

from __future__ import annotations

import hmac
import secrets
from typing import TYPE_CHECKING, Final, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connectors.testing.slack.api import MethodContext
from connectors.testing.slack.envelope import (
    SlackApiError,
    error_response,
    json_response,
    parse_request,
)
from connectors.testing.slack.events import slack_signature
from connectors.testing.slack.state import JSONObject, SlackApp

if TYPE_CHECKING:
    from connectors.testing.slack.emulator import SlackEmulator

__all__ = ["AppSecretRotation"]

SecretKind = Literal["client_secret", "signing_secret"]
_KINDS: Final[tuple[SecretKind, ...]] = ("client_secret", "signing_secret")


class AppSecretRotation:
    """Open secret rotations of the emulator's apps, and the checks that honour them.

    ``refuse_new_client_secrets`` is a test switch: new client secrets are issued but
    ``oauth.v2.access`` refuses them (``bad_client_secret``), as when a rotation did not take
    effect; a rotation that verifies the new secret must then roll back.
    """

    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        #: Old client secrets still accepted, by app id.
        self.previous_client_secrets: dict[str, str] = {}
        #: New signing secrets, accepted but not yet signing, by app id.
        self.pending_signing_secrets: dict[str, str] = {}
        self.refuse_new_client_secrets = False
        self._refused: set[str] = set()
        # Ahead of the Web API's catch-all ``/api/{method}``: these are not Slack methods.
        route = Route("/api/emulator.apps.{action}", self._endpoint, methods=["POST"])
        emulator.app.router.routes.insert(0, route)

    async def _endpoint(self, request: Request) -> Response:
        action = request.path_params["action"]
        try:
            parsed = await parse_request(request)
            ctx = MethodContext(
                self.emulator, f"emulator.apps.{action}", parsed.args, None, request
            )
            ctx.basic_auth = parsed.basic_auth
            app = _app(ctx)
            if action == "rotateClientSecret":
                body: JSONObject = {"client_id": app.client_id}
                body["client_secret"] = self.rotate(app, "client_secret")
            elif action == "rotateSigningSecret":
                body = {"client_id": app.client_id}
                body["signing_secret"] = self.rotate(app, "signing_secret")
            elif action == "revokeOld":
                self.revoke_old(app, _kind(ctx))
                body = {}
            elif action == "cancel":
                self.cancel(app, _kind(ctx))
                body = {}
            else:
                raise SlackApiError("unknown_method", status=404)
        except SlackApiError as error:
            return error_response(error)
        return json_response({"ok": True, **body})

    # --- checks used by the rest of the emulator --------------------------------------------------

    def accepts_client_secret(self, app: SlackApp, secret: str | None) -> bool:
        """Whether ``secret`` authenticates ``app``: its current secret, or the old one while a
        rotation is open (constant-time comparisons)."""
        if secret is None:
            return False
        valid = [app.client_secret]
        old = self.previous_client_secrets.get(app.app_id)
        if old is not None:
            valid.append(old)
        return any(
            hmac.compare_digest(secret.encode(), v.encode()) and v not in self._refused
            for v in valid
        )

    def signing_secrets(self, app: SlackApp | None = None) -> tuple[str, ...]:
        """The signing secrets a receiver may see for ``app`` (default app): the one that signs,
        then the pending new one during an overlap."""
        app = app or self.emulator.default_app
        pending = self.pending_signing_secrets.get(app.app_id)
        return (app.signing_secret,) if pending is None else (app.signing_secret, pending)

    def verify_signature(
        self, timestamp: int | str, body: bytes, signature: str, app: SlackApp | None = None
    ) -> bool:
        """Whether ``signature`` (``v0=...``) signs ``body`` with any valid signing secret."""
        return any(
            hmac.compare_digest(slack_signature(s, timestamp, body), signature)
            for s in self.signing_secrets(app)
        )

    # --- the admin methods --------------------------------------------------------------------

    def rotate(self, app: SlackApp, kind: SecretKind) -> str:
        """Issue a new ``kind`` secret for ``app``; the old one stays valid."""
        open_rotations = (
            self.previous_client_secrets
            if kind == "client_secret"
            else self.pending_signing_secrets
        )
        if app.app_id in open_rotations:
            raise SlackApiError("rotation_in_progress")
        new = secrets.token_hex(16)
        if kind == "client_secret":
            self.previous_client_secrets[app.app_id] = app.client_secret
            app.client_secret = new
            if self.refuse_new_client_secrets:
                self._refused.add(new)
        else:
            self.pending_signing_secrets[app.app_id] = new
        return new

    def revoke_old(self, app: SlackApp, kind: SecretKind) -> None:
        """End the overlap: only the new secret is valid (and, for signing, signs)."""
        if kind == "client_secret":
            if self.previous_client_secrets.pop(app.app_id, None) is None:
                raise SlackApiError("no_rotation")
            return
        pending = self.pending_signing_secrets.pop(app.app_id, None)
        if pending is None:
            raise SlackApiError("no_rotation")
        app.signing_secret = pending

    def cancel(self, app: SlackApp, kind: SecretKind) -> None:
        """Forget the new secret: the old one is the only valid one again."""
        if kind == "client_secret":
            old = self.previous_client_secrets.pop(app.app_id, None)
            if old is None:
                raise SlackApiError("no_rotation")
            self._refused.discard(app.client_secret)
            app.client_secret = old
            return
        if self.pending_signing_secrets.pop(app.app_id, None) is None:
            raise SlackApiError("no_rotation")


def _app(ctx: MethodContext) -> SlackApp:
    """The calling app, authenticated by client id and (current or still-valid old) secret."""
    client_id = ctx.text("client_id")
    client_secret = ctx.text("client_secret")
    if ctx.basic_auth is not None and client_id is None:
        client_id, client_secret = ctx.basic_auth
    app = ctx.emulator.state.app_by_client_id(client_id) if client_id else None
    if app is None:
        raise SlackApiError("invalid_client_id")
    if not ctx.emulator.rotation.accepts_client_secret(app, client_secret):
        raise SlackApiError("bad_client_secret")
    return app


def _kind(ctx: MethodContext) -> SecretKind:
    found = ctx.text("secret") or "client_secret"
    for kind in _KINDS:
        if found == kind:
            return kind
    raise SlackApiError(
        "invalid_arguments", messages=["[ERROR] secret: client_secret|signing_secret"]
    )
