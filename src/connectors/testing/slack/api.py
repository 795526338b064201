"""What a method handler sees (:class:`MethodContext`) and the registry of handlers.

A handler is a plain function ``(ctx) -> body``: it reads typed arguments from the context,
raises :class:`~connectors.testing.slack.envelope.SlackApiError` for an ``ok: false`` answer and
returns the success body without ``ok`` (the dispatcher adds it, and any warnings).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.requests import Request

from connectors.testing.slack.envelope import SlackApiError
from connectors.testing.slack.state import Channel, JSONObject, Token, Workspace

if TYPE_CHECKING:
    from connectors.testing.slack.emulator import SlackEmulator

__all__ = ["HANDLERS", "Handler", "MethodContext", "handler"]


@dataclass(slots=True)
class MethodContext:
    """One call: the emulator, the method, its arguments, the authenticated token and the HTTP
    request that carried them."""

    emulator: SlackEmulator
    method: str
    args: dict[str, object]
    token: Token | None
    request: Request
    basic_auth: tuple[str, str] | None = None
    warnings: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        """The emulator's own URL, as the client reached it (worked out only when a handler
        needs it: most never do)."""
        return str(self.request.base_url)

    # --- identity ---------------------------------------------------------------------------

    @property
    def auth(self) -> Token:
        if self.token is None:
            raise SlackApiError("not_authed")
        return self.token

    @property
    def workspace(self) -> Workspace:
        return self.emulator.state.workspaces[self.auth.team_id]

    def now_us(self) -> int:
        return int(self.emulator.clock.time() * 1_000_000)

    # --- arguments --------------------------------------------------------------------------

    def text(self, name: str, *, required: bool = False) -> str | None:
        """A string argument (JSON numbers and booleans are accepted as their text)."""
        value = self.args.get(name)
        if value is None or value == "":
            if required:
                raise SlackApiError(
                    "invalid_arguments", messages=[f"[ERROR] missing required field: {name}"]
                )
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        raise SlackApiError("invalid_arguments", messages=[f"[ERROR] must be a string: {name}"])

    def required(self, name: str) -> str:
        value = self.text(name, required=True)
        assert value is not None
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        return str(value).strip().lower() in ("1", "true", "yes")

    def integer(self, name: str, default: int, *, error: str = "invalid_arguments") -> int:
        value = self.args.get(name)
        if value is None or value == "":
            return default
        try:
            return int(str(value))
        except ValueError:
            raise SlackApiError(error) from None

    def json_list(self, name: str, *, error: str) -> list[object] | None:
        """An array argument given as a JSON string (form) or as a JSON array (JSON body)."""
        value = self.args.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise SlackApiError(error) from None
        if not isinstance(value, list):
            raise SlackApiError(error)
        return value

    # --- permissions and lookups -----------------------------------------------------------

    def require_scope(self, *any_of: str) -> None:
        """``missing_scope`` with ``needed``/``provided`` unless the token has one of them."""
        token = self.auth
        if any(scope in token.scopes for scope in any_of):
            return
        raise SlackApiError(
            "missing_scope", needed=",".join(any_of), provided=",".join(sorted(token.scopes))
        )

    def channel(self, name: str = "channel", *, allow_names: bool = False) -> Channel:
        """Resolve a channel argument; private channels the caller is not in are invisible."""
        value = self.text(name)
        if value is None:
            raise SlackApiError("channel_not_found")
        ws = self.workspace
        found = ws.channels.get(value)
        if found is None and allow_names:
            found = ws.channel_by_name(value)
        if found is None or (found.is_private and self.auth.user_id not in found.members):
            raise SlackApiError("channel_not_found")
        return found

    def require_channel_scope(self, channel: Channel, public: str, private: str) -> None:
        self.require_scope(private if channel.is_private else public)


Handler = Callable[[MethodContext], JSONObject]

#: Method name -> (handler, needs a token).
HANDLERS: dict[str, tuple[Handler, bool]] = {}


def handler(name: str, *, authenticated: bool = True) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the implementation of Web API method ``name``."""

    def register(fn: Handler) -> Handler:
        HANDLERS[name] = (fn, authenticated)
        return fn

    return register
