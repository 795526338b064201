"""The declarative REST adapter (``type: http``): operations described in YAML.

See :mod:`connectors.adapters.http.connector` and ``docs/templates.md``.
"""

from connectors.adapters.http.connector import HttpConnector, connector_class_for

__all__ = ["HttpConnector", "connector_class_for"]
