"""Authentication: auth flows as ``httpx2.Auth``, OAuth 2.0 grants, the token manager, scopes.

- :mod:`~connectors.auth.tokens`: :class:`TokenSet`, parsed from any provider's token response;
- :mod:`~connectors.auth.static`: API key, HTTP Basic, fixed bearer token;
- :mod:`~connectors.auth.jwt`: :class:`JwtSigner` and :class:`SignedJwtAuth` (HS256/RS256/ES256);
- :mod:`~connectors.auth.endpoint`, :mod:`~connectors.auth.grants`, :mod:`~connectors.auth.pkce`:
  OAuth 2.0 token endpoint, grants and PKCE;
- :mod:`~connectors.auth.manager`: :class:`TokenManager`, single-flight refresh with CAS saves;
- :mod:`~connectors.auth.managed`: :class:`ManagedTokenAuth`, one refresh and retry on rejection;
- :mod:`~connectors.auth.scopes`: scope checks before any I/O;
- :mod:`~connectors.auth.ports` / :mod:`~connectors.auth.memory`: the store and lock Protocols the
  manager needs, with in-memory implementations.
"""

from connectors.auth.endpoint import (
    REAUTH_ERRORS,
    ClientAuthMethod,
    ClientCredentials,
    TokenEndpoint,
)
from connectors.auth.grants import (
    JWT_BEARER_GRANT_TYPE,
    AuthorizationCodeFlow,
    AuthorizationRequest,
    ClientCredentialsGrant,
    JwtBearerGrant,
    PasswordGrant,
    RefreshTokenGrant,
    TokenGrant,
)
from connectors.auth.jwt import JwtAlgorithm, JwtSigner, SignedJwtAuth
from connectors.auth.managed import (
    SALESFORCE_INVALID_SESSION,
    SLACK_INVALID_AUTH,
    UNAUTHORIZED,
    AuthFailureCheck,
    ManagedTokenAuth,
)
from connectors.auth.manager import RefreshEvent, RefreshHook, RefreshOutcome, TokenManager
from connectors.auth.memory import InMemoryLockProvider, InMemoryTokenStore
from connectors.auth.pkce import generate_code_verifier, s256_challenge
from connectors.auth.ports import LockProvider, TokenStore
from connectors.auth.scopes import (
    SALESFORCE_SCOPES,
    ScopeHierarchy,
    check_scopes,
    missing_scopes,
    union_of_operation_scopes,
)
from connectors.auth.static import ApiKeyAuth, BasicAuth, BearerAuth, EditingAuth
from connectors.auth.tokens import StoredToken, TokenSet

__all__ = [
    "JWT_BEARER_GRANT_TYPE",
    "REAUTH_ERRORS",
    "SALESFORCE_INVALID_SESSION",
    "SALESFORCE_SCOPES",
    "SLACK_INVALID_AUTH",
    "UNAUTHORIZED",
    "ApiKeyAuth",
    "AuthFailureCheck",
    "AuthorizationCodeFlow",
    "AuthorizationRequest",
    "BasicAuth",
    "BearerAuth",
    "ClientAuthMethod",
    "ClientCredentials",
    "ClientCredentialsGrant",
    "EditingAuth",
    "InMemoryLockProvider",
    "InMemoryTokenStore",
    "JwtAlgorithm",
    "JwtBearerGrant",
    "JwtSigner",
    "LockProvider",
    "ManagedTokenAuth",
    "PasswordGrant",
    "RefreshEvent",
    "RefreshHook",
    "RefreshOutcome",
    "RefreshTokenGrant",
    "ScopeHierarchy",
    "SignedJwtAuth",
    "StoredToken",
    "TokenEndpoint",
    "TokenGrant",
    "TokenManager",
    "TokenSet",
    "TokenStore",
    "check_scopes",
    "generate_code_verifier",
    "missing_scopes",
    "s256_challenge",
    "union_of_operation_scopes",
]
