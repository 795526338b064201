"""An emulator of the Salesforce REST API, OAuth server and Bulk API 2.0, for tests and demos.

::

    emulator = create_salesforce_app(SalesforceEmulatorConfig(seed=SeedSpec(contacts=1000)))
    transport = httpx2.ASGITransport(app=emulator.app)

Modules: ``config`` (what can be configured), ``app`` (the Starlette app and test controls),
``oauth``/``sessions`` (token flows), ``soql_parser``/``soql_eval``/``query`` (SOQL),
``sobjects``/``composite`` (REST writes), ``bulk_ingest``/``bulk_query`` (Bulk 2.0),
``limits``, ``seed``/``store`` (lazy data), ``describe``, ``server`` (uvicorn).
"""

from .app import SalesforceEmulator, create_salesforce_app
from .config import ConnectedApp, EmulatedUser, SalesforceEmulatorConfig
from .seed import SeedSpec
from .server import build_server, run_salesforce_emulator

__all__ = [
    "ConnectedApp",
    "EmulatedUser",
    "SalesforceEmulator",
    "SalesforceEmulatorConfig",
    "SeedSpec",
    "build_server",
    "create_salesforce_app",
    "run_salesforce_emulator",
]
