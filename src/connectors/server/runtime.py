"""The server's runtime: the Hub and everything the routes share, built once per app.

Routes reach it through the :func:`runtime` dependency (``request.app.state.runtime``), never
through module globals, so two apps over two Hubs can live in one process (tests do).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request
from fastapi.templating import Jinja2Templates

from connectors.hub import Hub
from connectors.server.auth import Authenticator, LoginLimiter
from connectors.server.health import HealthModel
from connectors.server.inbound import InboundRegistry
from connectors.server.oauth import OAuthConnect
from connectors.server.probes import Prober
from connectors.server.settings import ServerSettings

__all__ = ["PACKAGE_DIR", "ServerRuntime", "runtime"]

PACKAGE_DIR = Path(__file__).parent


@dataclass
class ServerRuntime:
    """Shared pieces of one server app."""

    hub: Hub
    settings: ServerSettings
    model: HealthModel
    prober: Prober
    oauth: OAuthConnect
    inbound: InboundRegistry
    limiter: LoginLimiter
    templates: Jinja2Templates
    _authenticator: Authenticator | None = None

    @classmethod
    def build(
        cls, hub: Hub, settings: ServerSettings, inbound: InboundRegistry | None = None
    ) -> ServerRuntime:
        model = HealthModel(hub, settings)
        return cls(
            hub=hub,
            settings=settings,
            model=model,
            prober=Prober(model, interval=settings.probe_interval, timeout=settings.probe_timeout),
            oauth=OAuthConnect(hub, model, settings),
            inbound=inbound or InboundRegistry(),
            limiter=LoginLimiter(
                hub.state,
                hub.clock,
                attempts=settings.login_attempts,
                window=settings.login_window,
            ),
            templates=Jinja2Templates(directory=str(PACKAGE_DIR / "templates")),
        )

    @property
    def authenticator(self) -> Authenticator:
        """Built on first use: API tokens need the Hub's database."""
        if self._authenticator is None:
            self._authenticator = Authenticator(
                self.hub.services.api_tokens, self.hub.state, self.settings, self.hub.clock
            )
        return self._authenticator


def runtime(request: Request) -> ServerRuntime:
    """FastAPI dependency: the app's :class:`ServerRuntime`."""
    found: ServerRuntime = request.app.state.runtime
    return found
