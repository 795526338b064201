"""The Salesforce connector's settings, read once at connect time and validated.

Settings arrive as a plain mapping (definition YAML, tenant overrides, explicit arguments);
``${...}`` references are :class:`~connectors.secrets.Secret` values by then. A secret given as a
plain string is wrapped in a ``Secret`` at once so it is masked from here on. Every bad value
raises :class:`~connectors.errors.InvalidSetting` naming the setting and what is accepted
(never the value of a secret).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

from connectors.errors import InvalidSetting
from connectors.secrets import Secret

__all__ = ["DEFAULT_API_VERSION", "AuthKind", "SalesforceSettings"]

AuthKind: TypeAlias = Literal["jwt", "client_credentials", "refresh_token", "password"]
DEFAULT_API_VERSION: Final = "62.0"
PRODUCTION_LOGIN: Final = "https://login.salesforce.com"
SANDBOX_LOGIN: Final = "https://test.salesforce.com"
_VERSION: Final = re.compile(r"^\d{2,3}\.0$")
_AUTH_KINDS: Final = ("jwt", "client_credentials", "refresh_token", "password")
MB: Final = 1024 * 1024


def _str(settings: Mapping[str, object], name: str, default: str | None = None) -> str | None:
    value = settings.get(name, default)
    if value is None or value == "":
        return default
    if isinstance(value, Secret):
        raise InvalidSetting(name, "<secret>", "a plain string (this setting is not a secret)")
    if not isinstance(value, str):
        raise InvalidSetting(name, value, "a string")
    return value


def _secret(settings: Mapping[str, object], name: str) -> Secret | None:
    value = settings.get(name)
    if value is None or value == "":
        return None
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value, name=f"salesforce/{name}")
    raise InvalidSetting(name, "<hidden>", "a string or Secret")


def _number(
    settings: Mapping[str, object], name: str, default: float | None, *, low: float, high: float
) -> float | None:
    value = settings.get(name, default)
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidSetting(name, value, f"a number in [{low:g}, {high:g}]") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise InvalidSetting(name, value, f"a number in [{low:g}, {high:g}]")
    return float(value)


def _url(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if not value.startswith(("https://", "http://")):
        raise InvalidSetting(name, value, "an http(s) URL such as https://login.salesforce.com")
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class SalesforceSettings:
    """Validated settings (see ``docs/connectors/salesforce.md`` for each one)."""

    auth: AuthKind
    client_id: str | None
    client_secret: Secret | None
    username: str | None
    private_key: Secret | None
    password: Secret | None
    security_token: Secret | None
    refresh_token: Secret | None
    login_url: str
    token_url: str
    audience: str
    instance_url: str | None
    api_version: str
    credential: str
    max_materialize: int
    query_batch_size: int | None
    throttle_below_pct: float | None
    throttle_rate: float
    degraded_below_pct: float
    daily_quota_retry_after: float
    bulk_chunk_bytes: int
    bulk_poll_interval: float
    bulk_poll_max_interval: float
    bulk_query_page_size: int

    @classmethod
    def from_mapping(cls, settings: Mapping[str, object], *, instance: str) -> SalesforceSettings:
        """Read and validate ``settings``; ``instance`` is the default credential name."""
        private_key = _secret(settings, "private_key")
        refresh_token = _secret(settings, "refresh_token")
        password = _secret(settings, "password")
        client_secret = _secret(settings, "client_secret")
        auth = _str(settings, "auth")
        if auth is None:
            if private_key is not None:
                auth = "jwt"
            elif refresh_token is not None:
                auth = "refresh_token"
            elif password is not None:
                auth = "password"
            elif client_secret is not None:
                auth = "client_credentials"
            else:
                auth = "refresh_token"  # a token stored by the connect (web server) flow
        if auth not in _AUTH_KINDS:
            raise InvalidSetting("auth", auth, "one of " + ", ".join(_AUTH_KINDS))
        client_id = _str(settings, "client_id")
        username = _str(settings, "username")
        needs: dict[str, tuple[str, ...]] = {
            "jwt": ("client_id", "username", "private_key"),
            "client_credentials": ("client_id", "client_secret"),
            "refresh_token": ("client_id",),
            "password": ("client_id", "client_secret", "username", "password"),
        }
        present = {
            "client_id": client_id,
            "client_secret": client_secret,
            "username": username,
            "private_key": private_key,
            "password": password,
        }
        for name in needs[auth]:
            if present[name] is None:
                raise InvalidSetting(
                    name, None, f"a value: the {auth} flow needs {', '.join(needs[auth])}"
                )
        login_url = _url(_str(settings, "login_url", PRODUCTION_LOGIN), "login_url")
        assert login_url is not None
        token_url = _url(_str(settings, "token_url"), "token_url") or (
            login_url + "/services/oauth2/token"
        )
        audience = _url(_str(settings, "audience"), "audience") or login_url
        api_version = _str(settings, "api_version", DEFAULT_API_VERSION) or DEFAULT_API_VERSION
        if isinstance(settings.get("api_version"), int | float):
            api_version = f"{float(settings['api_version']):.1f}"  # type: ignore[arg-type]
        if not _VERSION.match(api_version):
            raise InvalidSetting("api_version", api_version, "a version such as '62.0'")
        batch = _number(settings, "query_batch_size", None, low=200, high=2000)
        throttle = _number(settings, "throttle_below_pct", None, low=0, high=100)
        return cls(
            auth=auth,  # type: ignore[arg-type]
            client_id=client_id,
            client_secret=client_secret,
            username=username,
            private_key=private_key,
            password=password,
            security_token=_secret(settings, "security_token"),
            refresh_token=refresh_token,
            login_url=login_url,
            token_url=token_url,
            audience=audience,
            instance_url=_url(_str(settings, "instance_url"), "instance_url"),
            api_version=api_version,
            credential=_str(settings, "credential", instance) or instance,
            max_materialize=int(
                _number(settings, "max_materialize", 50_000, low=1, high=10_000_000) or 50_000
            ),
            query_batch_size=None if batch is None else int(batch),
            throttle_below_pct=throttle,
            throttle_rate=_number(settings, "throttle_rate", 1.0, low=0.001, high=1e6) or 1.0,
            degraded_below_pct=_number(settings, "degraded_below_pct", 10.0, low=0, high=100)
            or 0.0,
            daily_quota_retry_after=_number(
                settings, "daily_quota_retry_after", 3600.0, low=1, high=86_400
            )
            or 3600.0,
            bulk_chunk_bytes=int(
                _number(settings, "bulk_chunk_bytes", 100 * MB, low=1024, high=100 * MB) or 100 * MB
            ),
            bulk_poll_interval=_number(settings, "bulk_poll_interval", 2.0, low=0, high=600) or 0.0,
            bulk_poll_max_interval=_number(
                settings, "bulk_poll_max_interval", 30.0, low=0, high=3600
            )
            or 0.0,
            bulk_query_page_size=int(
                _number(settings, "bulk_query_page_size", 50_000, low=1, high=1_000_000) or 50_000
            ),
        )
