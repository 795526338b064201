"""Configuration: process settings (``CONNECTOR_*``) and connector definitions.

Importing this package is cheap: it only exposes :class:`Settings` and its errors; definition
models live in their own modules.
"""

from connectors.config.settings import ENV_PREFIX, InvalidSettings, Settings

__all__ = ["ENV_PREFIX", "InvalidSettings", "Settings"]
