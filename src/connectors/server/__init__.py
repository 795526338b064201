"""The server: health and status API, metrics, OAuth connect, inbound webhooks, dashboard.

::

    from connectors.server import ServerSettings, create_app

    app = create_app(hub, settings=ServerSettings(probe_interval=30))
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Modules: :mod:`.app` (the factory), :mod:`.auth` (tokens, sessions, CSRF, login limits),
:mod:`.health` (the health model), :mod:`.probes` (periodic checks), :mod:`.oauth` and
:mod:`.inbound` (connect and webhooks), ``api_*`` (JSON routes), :mod:`.dashboard` (pages),
:mod:`.sparkline`, :mod:`.signing`, :mod:`.demo` (``connectors demo``).
"""

from connectors.server.app import create_app
from connectors.server.inbound import InboundEndpoint, InboundEvent, InboundRegistry, enqueue_job
from connectors.server.settings import ServerSettings

__all__ = [
    "InboundEndpoint",
    "InboundEvent",
    "InboundRegistry",
    "ServerSettings",
    "create_app",
    "enqueue_job",
]
