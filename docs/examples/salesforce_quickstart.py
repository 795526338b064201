# ruff: noqa: E402
"""Salesforce quickstart against the emulated org (`python docs/examples/salesforce_quickstart.py`).

The first part stands in for real configuration: it creates an emulated org in process and a
default Hub whose ``salesforce`` connector reaches it (client credentials flow). With a real org
you would put the same settings in ``connectors.yaml`` instead. Then the four lines of the
specification run exactly as written.
"""

from __future__ import annotations

import tempfile

import httpx2

from connectors.adapters.salesforce import SalesforceConnector
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.sync import background_loop
from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec, create_salesforce_app
from connectors.testing.salesforce.config import DEFAULT_APP

# --- setup: an emulated org and a default Hub pointing at it -------------------------------------
emulator = create_salesforce_app(SalesforceEmulatorConfig(seed=SeedSpec(contacts=10)))
registry = AdapterRegistry(discover=False)
registry.register(SalesforceConnector)
data_dir = tempfile.mkdtemp(prefix="connectors-quickstart-")
hub = Hub(
    Settings.load({}, data_dir=data_dir),
    registry=registry,
    definitions={
        "salesforce": ConnectorDefinition(
            type="salesforce",
            settings={
                "auth": "client_credentials",
                "client_id": DEFAULT_APP.consumer_key,
                "client_secret": Secret(DEFAULT_APP.consumer_secret),
                "login_url": "https://acme.my.salesforce.com",
            },
        )
    },
    transports={"salesforce": httpx2.ASGITransport(app=emulator.app)},
    tokens=TokenManager(InMemoryTokenStore(), InMemoryLockProvider()),
)
background_loop().run(hub.start())  # create the local audit database
Hub.set_default(hub)

# --- the specification's example, verbatim ------------------------------------------------------
from connectors import get_connector

sf = get_connector("salesforce", tenant_id="acme-corp")
contacts = sf.query("SELECT Id, Name, Email FROM Contact LIMIT 10")
new_lead = sf.create("Lead", {"FirstName": "Alice", "LastName": "Smith", "Company": "Example Inc"})

# --- results -------------------------------------------------------------------------------------
print(f"{len(contacts)} contacts, e.g. {contacts[0]['Name']} <{contacts[0]['Email']}>")
print(f"created lead {new_lead.id} (success={new_lead.success})")

sf.close()
background_loop().run(hub.aclose())
Hub.set_default(None)
emulator.close()
