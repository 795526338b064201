"""Secrets: the ``Secret`` value type, secret references and resolvers, the credential store."""

from connectors.secrets.secret import MASK, Secret, live_secret_values

__all__ = ["MASK", "Secret", "live_secret_values"]
