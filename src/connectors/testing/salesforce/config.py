"""Configuration of the Salesforce emulator: the org, its users, connected apps and limits.

Defaults describe a small production org on API v62.0 with one administrator and one connected
app that accepts every flow, a 2-hour session timeout, a 100,000-call daily allocation and
Salesforce's long-running request limits (25 requests of 20 s or more at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .seed import SeedSpec

__all__ = [
    "DEFAULT_APP",
    "DEFAULT_USER",
    "ConnectedApp",
    "EmulatedUser",
    "SalesforceEmulatorConfig",
    "parse_version",
]


def parse_version(text: str) -> tuple[int, int] | None:
    """``"62.0"`` → ``(62, 0)``; ``None`` if ``text`` is not a version number."""
    major, _, minor = text.partition(".")
    if not major.isdigit() or (minor and not minor.isdigit()) or len(major) > 4:
        return None
    return int(major), int(minor or 0)


@dataclass(frozen=True, slots=True)
class EmulatedUser:
    """A user who can sign in; ``security_token`` is appended to the password when set."""

    username: str
    password: str = ""
    first_name: str = "Emulated"
    last_name: str = "User"
    email: str = ""
    security_token: str = ""


@dataclass(frozen=True, slots=True)
class ConnectedApp:
    """A connected app (OAuth client) and the flows it allows.

    ``public_key_pem`` holds the PEM of the certificate or public key uploaded for the JWT bearer
    flow. ``approved_users`` lists who may use the JWT flow (``None``: every user, as when the
    admin pre-authorizes all profiles). ``auto_approve_user`` is the user the test authorize
    endpoint signs in and approves for immediately.
    """

    consumer_key: str
    consumer_secret: str = ""
    public_key_pem: str | None = None
    redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("api", "refresh_token")
    rotate_refresh_tokens: bool = False
    client_credentials_user: str | None = None
    require_pkce: bool = False
    auto_approve_user: str | None = None
    approved_users: tuple[str, ...] | None = None
    allow_password_flow: bool = True


DEFAULT_USER = EmulatedUser(
    "admin@emulated.example.com",
    "emulated-password",
    first_name="Ada",
    last_name="Admin",
    email="admin@emulated.example.com",
)
DEFAULT_APP = ConnectedApp(
    consumer_key="3MVG9emulatedConsumerKey",
    consumer_secret="emulated-consumer-secret",  # noqa: S106 - a published test fixture
    redirect_uris=("http://localhost:8080/callback",),
    client_credentials_user=DEFAULT_USER.username,
    auto_approve_user=DEFAULT_USER.username,
)


@dataclass(frozen=True)
class SalesforceEmulatorConfig:
    """Everything the emulator can be told at start; control methods change some at run time."""

    org_id: str = "00D5g000004EMUL"
    instance_url: str = "https://emulated.my.salesforce.com"
    login_url: str = "https://login.salesforce.com"
    #: ``aud`` values the JWT bearer flow accepts.
    jwt_audiences: tuple[str, ...] = ("https://login.salesforce.com", "https://test.salesforce.com")
    #: Seconds an assertion's ``exp`` may lie in the future (Salesforce allows about 3 minutes).
    jwt_max_lifetime: float = 300.0
    users: tuple[EmulatedUser, ...] = (DEFAULT_USER,)
    connected_apps: tuple[ConnectedApp, ...] = (DEFAULT_APP,)
    #: Seconds of inactivity-free life of an access token (org session timeout).
    session_timeout: float = 7200.0
    latest_version: str = "62.0"
    #: Versions below this answer 410 (21.0–30.0 were retired in Summer '25).
    oldest_supported_version: str = "31.0"
    daily_api_limit: int = 100_000
    api_usage_start: int = 0
    long_request_threshold: float = 20.0
    max_concurrent_long_requests: int = 25
    #: Emulated latency added to every REST request, in seconds.
    latency: float = 0.0
    query_batch_size: int = 2000
    max_open_cursors: int = 100
    seed: SeedSpec = field(default_factory=SeedSpec)
    #: Polls of a closed Bulk 2.0 job before it reports InProgress, then JobComplete.
    bulk_polls_until_in_progress: int = 1
    bulk_polls_until_complete: int = 2
    #: If set, a closed job also completes once this many seconds (clock) have passed.
    bulk_processing_seconds: float | None = None
    #: Apply Bulk ingest rows to the record store (off for memory benchmarks of huge uploads).
    bulk_apply_to_store: bool = True
    #: Upserts report ``created`` and answer 200 on update from this version (204 before).
    upsert_created_since: str = "46.0"
