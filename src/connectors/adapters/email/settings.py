"""The email connector's settings, parsed once at connect time into frozen values.

Settings arrive as a flat mapping (a definition's ``settings:`` merged with tenant overrides);
``${...}`` references are :class:`~connectors.secrets.Secret` by then. Every bad value raises
:class:`~connectors.errors.InvalidSetting` naming the key and what is accepted, never the value of
a secret. See ``docs/connectors/email.md`` for the reference table.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TypeAlias, cast

from connectors.errors import InvalidSetting
from connectors.secrets import Secret
from connectors.storage.db import Database

__all__ = [
    "AuthMethod",
    "EmailSettings",
    "Security",
    "ServerSettings",
]

Security: TypeAlias = Literal["starttls", "tls", "none"]
AuthMethod: TypeAlias = Literal["auto", "plain", "login", "xoauth2", "none"]

_SECURITY: Final = ("starttls", "tls", "none")
_AUTH: Final = ("auto", "plain", "login", "xoauth2", "none")
_DEFAULT_PORTS: Final[Mapping[str, Mapping[str, int]]] = {
    "smtp": {"starttls": 587, "tls": 465, "none": 25},
    "imap": {"starttls": 143, "tls": 993, "none": 143},
}


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How to reach and log in to one server (SMTP or IMAP).

    ``security``: ``"tls"`` (implicit TLS, ports 465/993), ``"starttls"`` (upgrade required; the
    connection fails if the server does not offer it) or ``"none"`` (plaintext; for loopback
    test servers only). ``verify=False`` turns certificate checks off (never in production);
    ``ca_file`` trusts a private CA instead (the right way to use a self-signed test server).
    """

    protocol: Literal["smtp", "imap"]
    host: str
    port: int
    security: Security
    username: str | None
    password: Secret | None
    auth: AuthMethod
    verify: bool
    ca_file: str | None
    timeout: float

    @property
    def address(self) -> str:
        """``host:port`` for messages (never credentials)."""
        return f"{self.host}:{self.port}"

    def ssl_context(self) -> ssl.SSLContext:
        """A client TLS context: system CAs (or ``ca_file``), hostname checks, TLS 1.2+."""
        context = ssl.create_default_context(cafile=self.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if not self.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def uses_oauth(self) -> bool:
        return self.auth == "xoauth2"


@dataclass(frozen=True, slots=True)
class EmailSettings:
    """Everything the connector reads from its settings."""

    smtp: ServerSettings | None
    imap: ServerSettings | None
    oauth_credential: str | None
    access_token: Secret | None
    default_from: str | None
    message_id_domain: str | None
    local_hostname: str | None
    smtp_pool_size: int
    smtp_max_messages_per_connection: int
    smtp_noop_after: float
    imap_pool_size: int
    send_rate: float | None
    send_burst: float
    database_url: str | None
    database: Database | None
    idle_poll: float
    idle_renew: float

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> EmailSettings:
        """Parse and validate ``raw``; raises :class:`InvalidSetting` on the first bad key."""
        reader = _Reader(raw)
        oauth_credential = reader.text("oauth_credential")
        access_token = reader.secret("access_token")
        oauth = oauth_credential is not None or access_token is not None
        send_rate = reader.number("send_rate", None, positive=True)
        database = raw.get("database")
        if database is not None and not isinstance(database, Database):
            raise InvalidSetting(
                "database", type(database).__name__, "a connectors.storage.db.Database"
            )
        return cls(
            smtp=_server(reader, "smtp", oauth),
            imap=_server(reader, "imap", oauth),
            oauth_credential=oauth_credential,
            access_token=access_token,
            default_from=reader.text("default_from"),
            message_id_domain=reader.text("message_id_domain"),
            local_hostname=reader.text("local_hostname"),
            smtp_pool_size=reader.integer("smtp_pool_size", 4, minimum=1),
            smtp_max_messages_per_connection=reader.integer(
                "smtp_max_messages_per_connection", 100, minimum=1
            ),
            smtp_noop_after=_required(reader.number("smtp_noop_after", 10.0, positive=False)),
            imap_pool_size=reader.integer("imap_pool_size", 2, minimum=1),
            send_rate=send_rate,
            send_burst=_required(reader.number("send_burst", 1.0, positive=True)),
            database_url=reader.text("database_url"),
            database=database,
            idle_poll=_required(reader.number("idle_poll", 1.0, positive=True)),
            idle_renew=_required(reader.number("idle_renew", 1500.0, positive=True)),
        )


def _required(value: float | None) -> float:
    assert value is not None  # a default was given
    return value


def _server(
    reader: _Reader, protocol: Literal["smtp", "imap"], oauth: bool
) -> ServerSettings | None:
    host = reader.text(f"{protocol}_host")
    if host is None:
        return None
    security = reader.choice(
        f"{protocol}_security", _SECURITY, "starttls" if protocol == "smtp" else "tls"
    )
    port = reader.integer(
        f"{protocol}_port", _DEFAULT_PORTS[protocol][security], minimum=1, maximum=65535
    )
    username = reader.text(f"{protocol}_username") or reader.text("username")
    password = reader.secret(f"{protocol}_password") or reader.secret("password")
    auth = cast(AuthMethod, reader.choice(f"{protocol}_auth", _AUTH, "auto"))
    if auth == "auto":
        if oauth:
            auth = "xoauth2"
        elif password is not None:
            auth = "plain"
        else:
            auth = "none"
    if auth in ("plain", "login") and (username is None or password is None):
        raise InvalidSetting(
            f"{protocol}_auth", auth, "'none' or 'xoauth2' unless username and password are set"
        )
    if auth == "xoauth2" and (username is None or not oauth):
        raise InvalidSetting(
            f"{protocol}_auth",
            auth,
            "'xoauth2' only with a username and oauth_credential (or access_token)",
        )
    ca_file = reader.text("ca_file")
    if ca_file is not None and not Path(ca_file).is_file():
        raise InvalidSetting("ca_file", ca_file, "a readable PEM file of CA certificates")
    return ServerSettings(
        protocol=protocol,
        host=host,
        port=port,
        security=cast(Security, security),
        username=username,
        password=password,
        auth=auth,
        verify=reader.boolean("verify", True),
        ca_file=ca_file,
        timeout=_required(
            reader.number(f"{protocol}_timeout", None, positive=True)
            or reader.number("timeout", 30.0, positive=True)
        ),
    )


class _Reader:
    """Typed access to the raw settings mapping."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, object]) -> None:
        self._raw = raw

    def text(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, Secret):
            return value.reveal()
        if not isinstance(value, str):
            raise InvalidSetting(key, value, "a string")
        return value

    def secret(self, key: str) -> Secret | None:
        value = self._raw.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, Secret):
            return value
        if isinstance(value, str):
            return Secret(value, name=f"email/{key}")
        raise InvalidSetting(key, type(value).__name__, "a string or Secret")

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key)
        if value is None:
            return default
        lowered = value.lower()
        if lowered not in choices:
            raise InvalidSetting(key, value, "one of " + ", ".join(repr(c) for c in choices))
        return lowered

    def boolean(self, key: str, default: bool) -> bool:
        value = self._raw.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "1", "false", "no", "0"):
            return value.lower() in ("true", "yes", "1")
        raise InvalidSetting(key, value, "true or false")

    def integer(self, key: str, default: int, *, minimum: int, maximum: int | None = None) -> int:
        value = self._raw.get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSetting(key, value, f"an integer ≥ {minimum}")
        if value < minimum or (maximum is not None and value > maximum):
            accepted = f"an integer in [{minimum}, {maximum}]" if maximum else f"≥ {minimum}"
            raise InvalidSetting(key, value, accepted)
        return value

    def number(self, key: str, default: float | None, *, positive: bool) -> float | None:
        value = self._raw.get(key)
        if value is None:
            return default
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise InvalidSetting(key, value, "a number") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidSetting(key, value, "a number")
        number = float(value)
        if math.isnan(number) or math.isinf(number) or number < 0 or (positive and number == 0):
            raise InvalidSetting(key, value, "a finite number " + ("> 0" if positive else "≥ 0"))
        return number
