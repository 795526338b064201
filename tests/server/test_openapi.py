"""Schemathesis over the served OpenAPI document, with a valid admin token: no 5xx anywhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import requests
from hypothesis import HealthCheck, given, settings
from schemathesis import Case
from schemathesis.openapi import from_dict

from tests.server._live import live_server
from tests.server._support import make_server_hub, setup_env

EXAMPLES_PER_OPERATION = 25


def test_no_operation_answers_a_server_error_to_generated_requests(tmp_path: Path) -> None:
    hub = make_server_hub(tmp_path)
    env = asyncio.run(setup_env(hub))
    token = env.token("acme", "admin")
    headers = {"Authorization": f"Bearer {token}"}
    with live_server(env.app) as base_url, requests.Session() as session:  # type: ignore[arg-type]
        document = session.get(f"{base_url}/openapi.json", headers=headers, timeout=30)
        assert document.status_code == 200
        schema = from_dict(document.json())
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 8
        seen: list[tuple[str, str, int]] = []
        for operation in operations:

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy())
            def check(case: Case) -> None:
                response = case.call(
                    base_url=base_url, session=session, headers=headers, timeout=30
                )
                seen.append((case.method, case.path, response.status_code))
                assert response.status_code < 500, (case.method, case.formatted_path, response.text)

            check()
    statuses = {status for _m, _p, status in seen}
    assert statuses & {200, 303}  # valid requests were answered, not only rejected
    assert not any(status >= 500 for status in statuses)
