"""Process settings: the ``CONNECTOR_*`` environment variables, validated once, frozen.

:class:`Settings` is a pydantic-settings model. Build it with :meth:`Settings.load`, which reads a
mapping (``os.environ`` by default), applies explicit overrides on top (explicit > environment >
default; definition-level overrides are the Hub's business) and turns every validation failure
into :class:`~connectors.errors.InvalidSetting` naming the environment variable and the accepted
range in words. Several bad variables are reported together in one :class:`InvalidSettings`.

A misspelt variable is not an error (the environment belongs to many programs) and not a warning
(test suites run with warnings as errors): :meth:`Settings.unknown_variables` lists the unknown
``CONNECTOR_*`` names with a "did you mean" suggestion for the CLI to print.
"""

from __future__ import annotations

import contextvars
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

import annotated_types
from pydantic import BeforeValidator, Field, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)
from pydantic_settings.sources.utils import parse_env_vars

from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets.secret import Secret

__all__ = ["ENV_PREFIX", "InvalidSettings", "Settings"]

#: Prefix of every environment variable read by :class:`Settings`.
ENV_PREFIX = "CONNECTOR_"

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LogFormat = Literal["json", "console"]
StateBackend = Literal["memory", "redis"]
TenantLabelMode = Literal["keep", "drop", "hash"]

# The mapping ``Settings`` reads during one ``Settings.load`` call (``None``: ``os.environ``).
_environ: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "connectors_settings_environ", default=None
)


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _lower(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _to_secret(value: object) -> object:
    if isinstance(value, str):
        return Secret(value, name="CONNECTOR_MASTER_KEYS") if value else None
    return value


def _server_secret(value: object) -> object:
    if isinstance(value, str):
        if not value:
            return None
        if len(value) < 32:
            raise PydanticCustomError("too_short", "too short")
        return Secret(value, name="CONNECTOR_SERVER_SECRET")
    return value


def _check_url(schemes: tuple[str, ...], what: str) -> BeforeValidator:
    def check(value: object) -> object:
        if isinstance(value, str) and not value.lower().startswith(schemes):
            raise PydanticCustomError("url_scheme", "not a {what} URL", {"what": what})
        return value

    return BeforeValidator(check)


_DATABASE_SCHEMES = ("sqlite", "postgresql", "postgres")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

#: Accepted forms, in words, where the type and constraints do not say it well enough.
_ACCEPTED_OVERRIDES: dict[str, str] = {
    "database_url": "a SQLAlchemy URL starting with sqlite or postgresql "
    "(e.g. postgresql+asyncpg://host/db); unset for SQLite under the data directory",
    "redis_url": "a redis://, rediss:// or unix:// URL",
    "master_keys": "one or more master keys (see `connectors keys generate`)",
    "data_dir": "a directory path",
    "config": "the path of a connectors.yaml file",
    "dev_mode": "a boolean (true/false, 1/0, yes/no, on/off)",
    "server_secret": "a random string of at least 32 characters",
}


class Settings(BaseSettings):
    """Every process-wide setting, each from ``CONNECTOR_<NAME>``; immutable once built.

    Durations are in milliseconds, like the environment variables they come from.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        frozen=True,
        extra="forbid",
        case_sensitive=False,
        env_ignore_empty=True,
        arbitrary_types_allowed=True,
        validate_default=False,
    )

    # --- resilience defaults (a definition's ``resilience`` block overrides them) ---
    retry_max_attempts: int = Field(3, ge=1, le=100, description="Attempts per operation.")
    retry_base_delay_ms: int = Field(100, ge=0, le=600_000, description="First backoff delay.")
    retry_max_delay_ms: int = Field(10_000, ge=0, le=3_600_000, description="Backoff cap.")
    timeout_ms: int = Field(30_000, ge=1, le=3_600_000, description="Timeout of one attempt.")
    deadline_ms: int = Field(120_000, ge=1, le=86_400_000, description="Budget per operation.")
    circuit_breaker_threshold: int = Field(5, ge=1, le=10_000, description="Failures to open.")
    circuit_breaker_reset_ms: int = Field(30_000, ge=1, le=86_400_000, description="Open time.")
    rate_limit_rps: float | None = Field(None, gt=0, description="Local request rate cap.")
    rate_limit_burst: int = Field(1, ge=1, description="Requests allowed at once.")
    bulkhead_max_concurrent: int = Field(50, ge=1, le=100_000, description="Calls in flight.")
    bulkhead_max_queue: int = Field(100, ge=0, le=1_000_000, description="Calls waiting.")

    # --- storage, state, configuration ---
    data_dir: Path = Field(Path("./.connectors"), description="Where local state lives.")
    database_url: Annotated[str | None, _check_url(_DATABASE_SCHEMES, "database")] = None
    state_backend: Annotated[StateBackend, BeforeValidator(_lower)] = "memory"
    redis_url: Annotated[str | None, _check_url(_REDIS_SCHEMES, "Redis")] = None
    redis_clock: Literal["server", "client"] = Field(
        "server", description="Time source of Redis scripts: server TIME, or the client's clock."
    )
    jobs_backend: Literal["local", "procrastinate", "auto"] = Field(
        "auto",
        description="Background jobs: the local runner (SQL table, one process), procrastinate "
        "(PostgreSQL, many workers), or auto (procrastinate when database_url is PostgreSQL).",
    )
    state_on_unavailable: Literal["fail_open", "fail_closed"] = Field(
        "fail_open",
        description="When Redis is unreachable: serve from local state (with a metric and a "
        "warning) or fail calls with ServiceUnavailable.",
    )
    config: Path | None = Field(None, description="Path of connectors.yaml.")
    master_keys: Annotated[Secret | None, BeforeValidator(_to_secret)] = Field(
        None, repr=False, description="Master keys wrapping the per-tenant data keys."
    )
    dev_mode: bool = False
    server_secret: Annotated[Secret | None, BeforeValidator(_server_secret)] = Field(
        None,
        repr=False,
        description="HMAC key of the server's sessions, CSRF tokens and OAuth state; unset: a "
        "random key per process (sessions end when the server restarts).",
    )

    # --- observability ---
    log_level: Annotated[LogLevel, BeforeValidator(_upper)] = "INFO"
    log_format: Annotated[LogFormat, BeforeValidator(_lower)] = "json"
    metrics_tenant_label: Annotated[TenantLabelMode, BeforeValidator(_lower)] = "keep"

    @model_validator(mode="after")
    def _check_relations(self) -> Settings:
        if self.retry_max_delay_ms < self.retry_base_delay_ms:
            raise PydanticCustomError(
                "setting_relation",
                "retry_max_delay_ms is below retry_base_delay_ms",
                {
                    "field": "retry_max_delay_ms",
                    "accepted": "an integer from 0 to 3600000, not less than "
                    f"CONNECTOR_RETRY_BASE_DELAY_MS ({self.retry_base_delay_ms})",
                },
            )
        if self.state_backend == "redis" and self.redis_url is None:
            raise PydanticCustomError(
                "setting_relation",
                "redis_url is required for the redis state backend",
                {
                    "field": "redis_url",
                    "accepted": "a redis:// URL (required when CONNECTOR_STATE_BACKEND=redis)",
                },
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Explicit values first, then the environment; no .env file, no secrets directory.
        return (init_settings, _MappingEnvSource(settings_cls))

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from ``environ`` (default ``os.environ``) with ``overrides`` on top.

        Raises :class:`~connectors.errors.InvalidSetting` (an :class:`InvalidSettings` when
        several are wrong) naming each variable and what it accepts.
        """
        source: Mapping[str, str] = os.environ if environ is None else environ
        unknown = [name for name in overrides if name not in cls.model_fields]
        if unknown:
            raise _aggregate([_unknown_override(name, overrides[name]) for name in unknown])
        token = _environ.set(source)
        try:
            return cls(**overrides)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise _translate(exc, source, overrides) from None
        finally:
            _environ.reset(token)

    @classmethod
    def env_var(cls, field: str) -> str:
        """The environment variable of a field: ``retry_max_attempts`` → ``CONNECTOR_...``."""
        return ENV_PREFIX + field.upper()

    @classmethod
    def accepted(cls, field: str) -> str:
        """What a field accepts, in words (used in error messages and the CLI)."""
        return _accepted(field, cls.model_fields[field])

    @classmethod
    def unknown_variables(cls, environ: Mapping[str, str] | None = None) -> dict[str, str | None]:
        """Unknown ``CONNECTOR_*`` variables, each with the closest known name (or ``None``).

        For the CLI to print as "did you mean ...?"; the names are never errors, since the
        environment is shared with other programs.
        """
        source: Mapping[str, str] = os.environ if environ is None else environ
        known = [name.upper() for name in cls.model_fields]
        found: dict[str, str | None] = {}
        for name in sorted(source):
            upper = name.upper()
            if not upper.startswith(ENV_PREFIX) or upper[len(ENV_PREFIX) :] in known:
                continue
            # Compare without the shared prefix, which would make every name look close.
            close = difflib.get_close_matches(upper[len(ENV_PREFIX) :], known, n=1, cutoff=0.75)
            found[name] = ENV_PREFIX + close[0] if close else None
        return found

    # --- derived values ----------------------------------------------------------------------

    def effective_database_url(self) -> str:
        """``database_url``, or the embedded default: SQLite under ``data_dir``."""
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'connectors.db'}"

    @property
    def retry_base_delay(self) -> float:
        """``retry_base_delay_ms`` in seconds."""
        return self.retry_base_delay_ms / 1000

    @property
    def retry_max_delay(self) -> float:
        """``retry_max_delay_ms`` in seconds."""
        return self.retry_max_delay_ms / 1000

    @property
    def timeout(self) -> float:
        """``timeout_ms`` in seconds."""
        return self.timeout_ms / 1000

    @property
    def deadline(self) -> float:
        """``deadline_ms`` in seconds."""
        return self.deadline_ms / 1000

    @property
    def circuit_breaker_reset(self) -> float:
        """``circuit_breaker_reset_ms`` in seconds."""
        return self.circuit_breaker_reset_ms / 1000


class InvalidSettings(InvalidSetting):
    """Several settings are invalid at once; ``problems`` holds one error per setting."""

    def __init__(self, problems: Sequence[InvalidSetting]) -> None:
        listing = "; ".join(p.message for p in problems)
        ConfigurationError.__init__(self, f"{len(problems)} settings are invalid: {listing}")
        self.problems = tuple(problems)
        self.setting = problems[0].setting
        self.accepted = problems[0].accepted


class _MappingEnvSource(EnvSettingsSource):
    """The environment source, reading the mapping given to ``Settings.load``."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        source = _environ.get()
        return parse_env_vars(
            os.environ if source is None else source,
            self.case_sensitive,
            self.env_ignore_empty,
            self.env_parse_none_str,
        )


# --- error translation ----------------------------------------------------------------------


def _accepted(name: str, field: FieldInfo) -> str:
    if name in _ACCEPTED_OVERRIDES:
        return _ACCEPTED_OVERRIDES[name]
    annotation = field.annotation
    optional = get_origin(annotation) is not None and type(None) in get_args(annotation)
    if optional:
        annotation = next(a for a in get_args(annotation) if a is not type(None))
    if get_origin(annotation) is Literal:
        words = "one of " + ", ".join(repr(a) for a in get_args(annotation))
    else:
        low = high = above = None
        for meta in field.metadata:
            if isinstance(meta, annotated_types.Ge):
                low = meta.ge
            elif isinstance(meta, annotated_types.Le):
                high = meta.le
            elif isinstance(meta, annotated_types.Gt):
                above = meta.gt
        kind = "an integer" if annotation is int else "a number"
        if low is not None and high is not None:
            words = f"{kind} from {low} to {high}"
        elif low is not None:
            words = f"{kind} of at least {low}"
        elif above is not None:
            words = f"{kind} greater than {above}"
        else:
            words = kind
    return words + (", or unset for none" if optional else "")


def _env_value(source: Mapping[str, str], var: str) -> str | None:
    for key, value in source.items():
        if key.upper() == var:
            return value
    return None


_USERINFO = re.compile(r"(?<=://)([^:/@\s]*):([^@/\s]*)@")


def _shown(value: object) -> object:
    # URLs may carry a password in their user-info part; mask it before it enters a message.
    if isinstance(value, str):
        return _USERINFO.sub(r"\1:***@", value)
    return value


def _problem(
    field: str, source: Mapping[str, str], overrides: Mapping[str, object], accepted: str
) -> InvalidSetting:
    if field in overrides:
        return InvalidSetting(field, _shown(overrides[field]), accepted)
    var = Settings.env_var(field)
    return InvalidSetting(var, _shown(_env_value(source, var)), accepted)


def _translate(
    exc: ValidationError, source: Mapping[str, str], overrides: Mapping[str, object]
) -> InvalidSetting:
    problems: dict[str, InvalidSetting] = {}
    for error in exc.errors(include_url=False, include_input=False):
        ctx: dict[str, Any] = error.get("ctx") or {}
        if error["type"] == "setting_relation":
            field = str(ctx["field"])
            accepted = str(ctx["accepted"])
        else:
            field = str(error["loc"][0]) if error["loc"] else ""
            if field not in Settings.model_fields:  # pragma: no cover - defensive
                raise ConfigurationError(f"invalid settings: {error['msg']}") from None
            accepted = Settings.accepted(field)
        problems.setdefault(field, _problem(field, source, overrides, accepted))
    return _aggregate(list(problems.values()))


def _unknown_override(name: str, value: object) -> InvalidSetting:
    close = difflib.get_close_matches(name, list(Settings.model_fields), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    return InvalidSetting(name, _shown(value), "a known setting name" + hint)


def _aggregate(problems: list[InvalidSetting]) -> InvalidSetting:
    return problems[0] if len(problems) == 1 else InvalidSettings(problems)
