"""Connector Framework: call external systems safely, for many tenants at once."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
