"""Shared helpers for the Salesforce emulator tests: clients, sign-in, reference bodies, shapes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import httpx2
import pytest

from connectors.clock import FakeClock
from connectors.testing.salesforce import (
    SalesforceEmulator,
    SalesforceEmulatorConfig,
    create_salesforce_app,
)
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

BASE_URL = "https://emulated.my.salesforce.com"
V = "/services/data/v62.0"
T = TypeVar("T")


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh event loop."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


def make_emulator(
    config: SalesforceEmulatorConfig | None = None,
) -> tuple[SalesforceEmulator, FakeClock]:
    """An emulator on a fake clock."""
    clock = FakeClock()
    return create_salesforce_app(config, clock=clock), clock


@asynccontextmanager
async def client(emulator: SalesforceEmulator) -> AsyncIterator[httpx2.AsyncClient]:
    """An httpx2 client wired to the emulator in process."""
    transport = httpx2.ASGITransport(app=emulator.app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


async def password_login(http: httpx2.AsyncClient) -> dict[str, str]:
    """Sign in as the default user with the default app (username-password flow)."""
    response = await http.post(
        "/services/oauth2/token",
        data={
            "grant_type": "password",
            "client_id": DEFAULT_APP.consumer_key,
            "client_secret": DEFAULT_APP.consumer_secret,
            "username": DEFAULT_USER.username,
            "password": DEFAULT_USER.password,
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, str] = response.json()
    return body


async def bearer(http: httpx2.AsyncClient) -> dict[str, str]:
    """Authorization headers for a fresh session."""
    token = (await password_login(http))["access_token"]
    return {"Authorization": f"Bearer {token}"}


# -- reference bodies ------------------------------------------------------------------------


def reference_dir() -> Path:
    """``shared/reference/salesforce/restforce`` beside the repository (CI clones it there)."""
    repo_root = Path(__file__).resolve().parents[3]
    directory = repo_root.parent / "shared" / "reference" / "salesforce" / "restforce"
    if not directory.is_dir():
        pytest.fail(
            f"reference bodies not found at {directory}: clone the shared/ directory beside the "
            "repository (the repository's parent must contain shared/reference/salesforce)"
        )
    return directory


def reference(name: str) -> object:
    """A parsed reference body (``None`` for an empty file, e.g. a 204 upsert)."""
    text = (reference_dir() / name).read_text()
    return json.loads(text) if text.strip() else None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def shape_differences(
    actual: object, expected: object, *, extra: Iterable[str] = (), path: str = "$"
) -> list[str]:
    """Where ``actual`` differs in shape from ``expected``: keys per object, JSON type per value.

    Arrays compare their first elements. ``extra`` names keys ``actual`` may have in addition
    (documented newer fields), at any depth.
    """
    allowed = set(extra)
    kind_actual, kind_expected = _kind(actual), _kind(expected)
    if kind_actual != kind_expected:
        return [f"{path}: {kind_actual} where the reference has {kind_expected}"]
    problems: list[str] = []
    if isinstance(actual, dict) and isinstance(expected, dict):
        missing = sorted(set(expected) - set(actual))
        unexpected = sorted(set(actual) - set(expected) - allowed)
        problems += [f"{path}: missing key {k!r}" for k in missing]
        problems += [f"{path}: unexpected key {k!r}" for k in unexpected]
        for key in set(actual) & set(expected):
            problems += shape_differences(
                actual[key], expected[key], extra=allowed, path=f"{path}.{key}"
            )
    elif isinstance(actual, list) and isinstance(expected, list) and actual and expected:
        problems += shape_differences(actual[0], expected[0], extra=allowed, path=f"{path}[0]")
    return problems


def assert_same_shape(actual: object, expected: object, *, extra: Iterable[str] = ()) -> None:
    """Fail with every difference listed."""
    problems = shape_differences(actual, expected, extra=extra)
    assert not problems, "\n".join(problems)
