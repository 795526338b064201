"""Fixtures for the Slack emulator tests."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from connectors.clock import FakeClock
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig, create_slack_app

BASE_URL = "https://slack.test"
_DEFAULT = object()


def shared_dir() -> Path:
    """``shared/`` beside the repository (CI clones the repo with it alongside)."""
    repo_root = Path(__file__).resolve().parents[3]
    path = repo_root.parent / "shared"
    if not (path / "reference" / "slack").is_dir():
        pytest.fail(
            f"shared reference data not found at {path}: clone the repository with shared/ "
            "beside it (expected shared/reference/slack/)"
        )
    return path


class SlackCaller:
    """Calls the emulator in process; every call runs its own event loop."""

    def __init__(self, emulator: SlackEmulator) -> None:
        self.emulator = emulator
        self.token = emulator.config.bot_token

    async def arequest(self, method: str, path: str, **kwargs: object) -> httpx2.Response:
        transport = httpx2.ASGITransport(app=self.emulator.app)
        async with httpx2.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    def request(self, method: str, path: str, **kwargs: object) -> httpx2.Response:
        return asyncio.run(self.arequest(method, path, **kwargs))

    def raw(
        self,
        api_method: str,
        token: object = _DEFAULT,
        *,
        as_json: bool = False,
        get: bool = False,
        **args: object,
    ) -> httpx2.Response:
        """Call ``/api/<api_method>``: form-encoded by default, JSON body or GET query if asked."""
        value = self.token if token is _DEFAULT else token
        headers = {"Authorization": f"Bearer {value}"} if value else {}
        if get:
            return self.request("GET", f"/api/{api_method}", params=args, headers=headers)
        if as_json:
            headers["Content-Type"] = "application/json; charset=utf-8"
            return self.request(
                "POST", f"/api/{api_method}", content=json.dumps(args).encode(), headers=headers
            )
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in args.items()}
        return self.request("POST", f"/api/{api_method}", data=form, headers=headers)

    def call(self, api_method: str, token: object = _DEFAULT, **args: object) -> dict[str, object]:
        response = self.raw(api_method, token, **args)
        assert response.status_code == 200, response.text
        body = response.json()
        assert isinstance(body, dict)
        return body


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_emulator(clock: FakeClock) -> Callable[..., SlackEmulator]:
    def make(**overrides: object) -> SlackEmulator:
        config = SlackEmulatorConfig(**overrides)  # type: ignore[arg-type]
        return create_slack_app(config, clock=clock)

    return make


@pytest.fixture
def emulator(make_emulator: Callable[..., SlackEmulator]) -> SlackEmulator:
    return make_emulator(rate_limits=False)


@pytest.fixture
def slack(emulator: SlackEmulator) -> SlackCaller:
    return SlackCaller(emulator)


@pytest.fixture
def shared_path() -> Path:
    return shared_dir()


@pytest.fixture
def caller() -> Callable[[SlackEmulator], SlackCaller]:
    return SlackCaller
