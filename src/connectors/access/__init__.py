"""Access control: roles per tenant and team, the permission check, and API tokens.

- :mod:`~connectors.access.roles` — :class:`Role`, :class:`Permission` and the one
  :data:`MATRIX` of who may do what;
- :mod:`~connectors.access.policy` — :class:`AccessPolicy`: grants, teams, cached checks;
- :mod:`~connectors.access.tokens` — :class:`ApiTokens` for the server.
"""

from connectors.access.policy import AccessChange, AccessPolicy, Denial, Grant, TeamInfo
from connectors.access.roles import MATRIX, Permission, Role, highest, minimum_role
from connectors.access.tokens import TOKEN_PREFIX, ApiTokens, TokenInfo

__all__ = [
    "MATRIX",
    "TOKEN_PREFIX",
    "AccessChange",
    "AccessPolicy",
    "ApiTokens",
    "Denial",
    "Grant",
    "Permission",
    "Role",
    "TeamInfo",
    "TokenInfo",
    "highest",
    "minimum_role",
]
