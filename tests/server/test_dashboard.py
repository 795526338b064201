"""Dashboard pages: grid, connector page, circuits, audit filters, CSRF on forms, no secrets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import httpx2
import pytest

from connectors.errors import ServiceUnavailable
from connectors.server.sparkline import sparkline
from tests.server._support import CANARY, make_server_hub, setup_env

PAGES = ("/", "/circuits", "/audit", "/connectors/echo", "/audit?outcome=failure")


def test_pages_show_live_state_forms_carry_csrf_and_no_secret_appears(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] % 2 == 0:
            return httpx2.Response(500, json={"error": "boom"})
        return httpx2.Response(200, json={"echo": request.url.params["q"]})

    async def main() -> None:
        hub = make_server_hub(tmp_path, httpx2.MockTransport(flaky), threshold=100)
        env = await setup_env(hub)
        try:
            async with hub.open("echo", tenant_id="acme") as conn:
                for i in range(6):
                    if i % 2:
                        with pytest.raises(ServiceUnavailable):
                            await conn.echo(str(i))  # type: ignore[attr-defined]
                    else:
                        await conn.echo(str(i))  # type: ignore[attr-defined]
            async with env.client(env.token("acme", "admin")) as admin:
                pages = {p: await admin.get(p) for p in PAGES}
            async with env.client(env.token("acme", "viewer")) as viewer:
                circuits_as_viewer = await viewer.get("/circuits")
                other = await viewer.get("/connectors/echo-b")
        finally:
            await hub.aclose()
        for path, response in pages.items():
            assert response.status_code == 200, (path, response.text[:300])
            assert CANARY not in response.text
            assert "cft_" not in response.text  # no API token either
            for form in re.findall(r'<form method="post".*?</form>', response.text, re.S):
                assert 'name="csrf_token"' in form, (path, form)
        grid = pages["/"].text
        assert 'id="card-echo" data-status="unhealthy"' in grid
        assert grid.count("<svg") == 2
        assert "ServiceUnavailable" in grid
        assert 'http-equiv="refresh"' in grid  # the no-JS fallback
        assert "Reset</button>" in pages["/circuits"].text
        assert "Reset</button>" not in circuits_as_viewer.text
        assert pages["/connectors/echo"].text.count('<tr class="o-') >= 6
        failures = pages["/audit?outcome=failure"].text
        assert 'class="o-failure"' in failures
        assert 'class="o-success"' not in failures
        assert other.status_code == 404
        assert "<h1>Error 404</h1>" in other.text

    asyncio.run(main())


def test_a_bad_audit_date_is_a_400_page(tmp_path: Path) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        env = await setup_env(hub)
        try:
            async with env.client(env.token("acme", "viewer")) as viewer:
                response = await viewer.get("/audit", params={"since": "yesterday"})
        finally:
            await hub.aclose()
        assert response.status_code == 400
        assert "not a date and time" in response.text

    asyncio.run(main())


def test_sparklines_are_inline_svg_without_scripts() -> None:
    svg = str(sparkline([0.0, 0.5, None, 1.0], label="echo error rate"))
    assert svg.startswith("<svg")
    assert "<script" not in svg
    assert "polyline" in svg
