"""OAuth connect: send an admin to the provider, take the code back, store the tokens.

``start`` builds the provider's authorisation URL with a PKCE S256 challenge and a signed
``state``. The state is an HMAC-signed, expiring payload (:mod:`~connectors.server.signing`,
purpose ``oauth-state``) binding the tenant, the connector, the admin's token id and a random
*verifier reference*; the PKCE verifier itself never leaves the server: it waits in
:class:`PendingConnects` under that reference, for one use only. ``finish`` (the callback)
accepts a state only if its signature holds, it has not expired and its verifier is still
pending; then it exchanges the code, stores the token set in the tenant's credential store with
:meth:`~connectors.auth.TokenManager.install` (compare-and-swap), and writes an audit record.

Provider clients are built per adapter type by :data:`OAUTH_CLIENTS` factories from the
connector's definition settings, resolved for the tenant (``${secret:...}``): Salesforce (web
server flow with PKCE), Slack (OAuth v2 install; Slack takes no PKCE challenge) and a generic
``authorize_url``/``token_url`` flow for any other definition.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol

import httpx2

from connectors.audit.events import AuditEvent
from connectors.auth.endpoint import ClientCredentials, TokenEndpoint
from connectors.auth.grants import AuthorizationCodeFlow
from connectors.auth.pkce import generate_code_verifier
from connectors.auth.tokens import TokenSet
from connectors.clock import Clock
from connectors.errors import AuthenticationFailed, ConfigurationError, InvalidRequest
from connectors.hub import Hub
from connectors.secrets.secret import Secret
from connectors.server.health import HealthModel
from connectors.server.settings import ServerSettings
from connectors.server.signing import sign, unsign

__all__ = [
    "OAUTH_CLIENTS",
    "ConnectResult",
    "FlowInputs",
    "OAuthClient",
    "OAuthConnect",
    "PendingConnects",
    "StartedConnect",
]

_PURPOSE: Final = "oauth-state"


class OAuthClient(Protocol):
    """One provider's authorisation-code flow for one tenant's connector."""

    def authorization_url(self, state: str, verifier: Secret) -> str: ...

    async def exchange(self, code: str, verifier: Secret) -> TokenSet: ...


@dataclass(frozen=True, slots=True)
class FlowInputs:
    """What a factory gets: the tenant's resolved settings, the connector name, an HTTP client
    for token calls (and the Hub's transport under it), the clock and the redirect URI."""

    settings: Mapping[str, object]
    name: str
    http: httpx2.AsyncClient
    transport: httpx2.AsyncBaseTransport | None
    clock: Clock
    redirect_uri: str


OAuthFactory = Callable[[FlowInputs], Awaitable[OAuthClient]]


class _Borrowed(httpx2.AsyncBaseTransport):
    """A transport owned by the Hub: closing our short-lived client must not close it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Nothing: the Hub closes it."""


class _CodeFlowClient:
    def __init__(self, flow: AuthorizationCodeFlow) -> None:
        self._flow = flow

    def authorization_url(self, state: str, verifier: Secret) -> str:
        return self._flow.authorization_url(state=state, code_verifier=verifier).url

    async def exchange(self, code: str, verifier: Secret) -> TokenSet:
        return await self._flow.exchange_code(code, verifier)


async def _salesforce(inputs: FlowInputs) -> OAuthClient:
    from connectors.adapters.salesforce.auth import authorization_flow
    from connectors.adapters.salesforce.settings import SalesforceSettings

    parsed = SalesforceSettings.from_mapping(
        {**inputs.settings, "auth": "refresh_token"}, instance=inputs.name
    )
    flow = authorization_flow(parsed, inputs.http, inputs.clock, redirect_uri=inputs.redirect_uri)
    return _CodeFlowClient(flow)


class _SlackClient:
    def __init__(self, app: object) -> None:
        from connectors.adapters.slack.oauth import SlackOAuthApp

        assert isinstance(app, SlackOAuthApp)
        self._app = app

    def authorization_url(self, state: str, verifier: Secret) -> str:
        return self._app.install_request(state=state).url

    async def exchange(self, code: str, verifier: Secret) -> TokenSet:
        return await self._app.exchange_code(code)


async def _slack(inputs: FlowInputs) -> OAuthClient:
    from connectors.adapters.slack.oauth import SlackOAuthApp
    from connectors.adapters.slack.settings import SlackSettings

    settings, name = inputs.settings, inputs.name
    parsed = SlackSettings.from_mapping({**settings, "oauth_credential": name, "token": None})
    if parsed.client_id is None or parsed.client_secret is None:
        raise ConfigurationError(
            "the Slack install flow needs client_id and client_secret settings", connector=name
        )
    authorize = settings.get("authorize_url")
    app = SlackOAuthApp(
        client_id=parsed.client_id,
        client_secret=parsed.client_secret,
        token_url=parsed.token_url,
        redirect_uri=inputs.redirect_uri,
        scopes=parsed.install_scopes or ("chat:write",),
        transport=inputs.transport,
        clock=inputs.clock,
        **({"authorize_url": authorize} if isinstance(authorize, str) else {}),
    )
    return _SlackClient(app)


async def _generic(inputs: FlowInputs) -> OAuthClient:
    settings, name = inputs.settings, inputs.name
    authorize, token_url = settings.get("authorize_url"), settings.get("token_url")
    client_id, client_secret = settings.get("client_id"), settings.get("client_secret")
    if not (isinstance(authorize, str) and isinstance(token_url, str)):
        raise ConfigurationError(
            f"connector {name!r} has no OAuth connect flow",
            connector=name,
            hint="set authorize_url, token_url and client_id in its definition settings",
        )
    if not isinstance(client_id, str):
        raise ConfigurationError("the OAuth connect flow needs client_id", connector=name)
    secret = client_secret if isinstance(client_secret, Secret) else None
    if isinstance(client_secret, str) and client_secret:
        secret = Secret(client_secret, name=f"{name}/client_secret")
    credentials = ClientCredentials(client_id, secret, "client_secret_basic" if secret else "none")
    scopes = settings.get("scopes")
    flow = AuthorizationCodeFlow(
        TokenEndpoint(
            token_url,
            client=inputs.http,
            credentials=credentials,
            clock=inputs.clock,
            connector=name,
        ),
        authorize_url=authorize,
        client_id=client_id,
        redirect_uri=inputs.redirect_uri,
        scopes=[str(s) for s in scopes] if isinstance(scopes, list) else (),
    )
    return _CodeFlowClient(flow)


#: OAuth client factories by adapter type (applications may add their own).
OAUTH_CLIENTS: dict[str, OAuthFactory] = {"salesforce": _salesforce, "slack": _slack}


class PendingConnects:
    """PKCE verifiers waiting for their callback, by reference; each is taken once."""

    def __init__(self, clock: Clock, *, max_entries: int = 10_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._pending: dict[str, tuple[Secret, float]] = {}

    def put(self, verifier: Secret, expires_at: float) -> str:
        now = self._clock.time()
        if len(self._pending) >= self._max:
            self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
            if len(self._pending) >= self._max:
                raise InvalidRequest("too many OAuth connects in progress; try again shortly")
        ref = secrets.token_urlsafe(16)
        self._pending[ref] = (verifier, expires_at)
        return ref

    def take(self, ref: str) -> Secret | None:
        found = self._pending.pop(ref, None)
        if found is None or found[1] <= self._clock.time():
            return None
        return found[0]

    def __len__(self) -> int:
        return len(self._pending)


@dataclass(frozen=True, slots=True)
class StartedConnect:
    """Where to send the admin, and until when the state is accepted."""

    authorize_url: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class ConnectResult:
    """What the callback stored (no token value)."""

    tenant: str
    connector: str
    credential: str
    version: int
    scopes: tuple[str, ...]
    expires_at: float | None


def _invalid_state() -> AuthenticationFailed:
    return AuthenticationFailed(
        "the OAuth state is invalid, expired or already used",
        provider_code="invalid_state",
        hint="start the connect again from the dashboard or the API",
    )


class OAuthConnect:
    """The connect flow of the server: ``start`` and ``finish``."""

    def __init__(self, hub: Hub, model: HealthModel, settings: ServerSettings) -> None:
        self.hub = hub
        self.model = model
        self.settings = settings
        self.pending = PendingConnects(hub.clock)

    async def _client(self, tenant: str, name: str, http: httpx2.AsyncClient) -> OAuthClient:
        definition = self.hub.definition(name)
        resolve = self.hub.services.settings_resolver(tenant)
        settings = await resolve(dict(definition.settings))
        factory = OAUTH_CLIENTS.get(definition.type, _generic)
        inputs = FlowInputs(
            settings,
            name,
            http,
            self.hub.transports.get(name),
            self.hub.clock,
            self.settings.redirect_uri,
        )
        return await factory(inputs)

    def _http(self, name: str) -> httpx2.AsyncClient:
        transport = self.hub.transports.get(name)
        return httpx2.AsyncClient(
            transport=None if transport is None else _Borrowed(transport), timeout=30.0
        )

    async def start(self, tenant: str, name: str, token_id: str) -> StartedConnect:
        """A signed state and the provider URL for ``tenant``'s ``name`` connector."""
        clock = self.hub.clock
        expires_at = clock.time() + self.settings.oauth_state_lifetime
        verifier = generate_code_verifier()
        async with self._http(name) as http:
            client = await self._client(tenant, name, http)
        ref = self.pending.put(verifier, expires_at)
        state = sign(
            self.settings.key,
            _PURPOSE,
            {"ten": tenant, "con": name, "ref": ref, "tok": token_id},
            expires_at=expires_at,
        )
        return StartedConnect(client.authorization_url(state, verifier), expires_at)

    async def finish(self, state: str | None, code: str | None) -> ConnectResult:
        """Check the state, exchange the code, store the tokens, audit."""
        clock = self.hub.clock
        data = unsign(self.settings.key, _PURPOSE, state, now=clock.time())
        if data is None:
            raise _invalid_state()
        tenant, name = data.get("ten"), data.get("con")
        ref, token_id = data.get("ref"), data.get("tok")
        if not (
            isinstance(tenant, str)
            and isinstance(name, str)
            and isinstance(ref, str)
            and isinstance(token_id, str)
        ):
            raise _invalid_state()
        verifier = self.pending.take(ref)
        if verifier is None:
            raise _invalid_state()
        if not code:
            raise InvalidRequest("the OAuth callback carried no code (was access denied?)")
        credential = self.model.credential_name(name)
        actor = f"api-token:{token_id}"
        try:
            async with self._http(name) as http:
                client = await self._client(tenant, name, http)
                token = await client.exchange(code, verifier)
            version = await self.hub.tokens.install(tenant, credential, token)
        except Exception as exc:
            self._audit(tenant, name, credential, actor, None, type(exc).__name__)
            raise
        self._audit(tenant, name, credential, actor, version, None)
        return ConnectResult(
            tenant, name, credential, version, tuple(sorted(token.scopes)), token.expires_at
        )

    def _audit(
        self,
        tenant: str,
        name: str,
        credential: str,
        actor: str,
        version: int | None,
        error: str | None,
    ) -> None:
        self.hub.services.audit.record(
            AuditEvent.new(
                clock=self.hub.clock,
                kind="oauth.connect",
                tenant=tenant,
                actor=actor,
                connector=name,
                operation="oauth.connect",
                outcome="success" if error is None else "failure",
                error_code=error,
                credential_name=credential,
                credential_version=version,
            )
        )
