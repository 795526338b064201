"""Incoming webhooks answer in plain text like Slack."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def hook(emulator):
    return emulator.webhook_paths[0]


def test_posting_text_answers_ok_and_lands_in_the_channel(slack, emulator, hook) -> None:
    response = slack.request("POST", hook, json={"text": "disk full"})
    assert (response.status_code, response.text) == (200, "ok")
    assert response.headers["content-type"].startswith("text/plain")
    assert emulator.channel("alerts").messages[-1].text == "disk full"


def test_form_payload_field_is_accepted(slack, hook) -> None:
    response = slack.request("POST", hook, data={"payload": json.dumps({"text": "hi"})})
    assert (response.status_code, response.text) == (200, "ok")


@pytest.mark.parametrize(
    ("body", "status", "text"),
    [
        (b"not json", 400, "invalid_payload"),
        (b"[1, 2]", 400, "invalid_payload"),
        (b"{}", 400, "no_text"),
        (b'{"blocks": [{"text": "no type"}]}', 400, "invalid_blocks"),
    ],
)
def test_bad_payloads_get_plain_text_errors(slack, hook, body, status, text) -> None:
    response = slack.request(
        "POST", hook, content=body, headers={"Content-Type": "application/json"}
    )
    assert (response.status_code, response.text) == (status, text)


def test_unknown_urls_and_wrong_secrets(slack, hook) -> None:
    _, _, team, hook_id, secret = hook.split("/")
    assert slack.request("POST", f"/services/T999/{hook_id}/{secret}", json={"text": "x"}).text == (
        "no_team"
    )
    missing = slack.request("POST", f"/services/{team}/B404/{secret}", json={"text": "x"})
    assert (missing.status_code, missing.text) == (404, "no_service")
    wrong = slack.request("POST", f"/services/{team}/{hook_id}/wrong", json={"text": "x"})
    assert (wrong.status_code, wrong.text) == (403, "invalid_token")


def test_archived_and_deleted_channels(slack, emulator) -> None:
    archived = emulator.create_incoming_webhook("old-projects")
    response = slack.request("POST", archived, json={"text": "x"})
    assert (response.status_code, response.text) == (410, "channel_is_archived")
    gone = emulator.create_incoming_webhook("random")
    del emulator.workspace.channels[emulator.channel("random").id]
    response = slack.request("POST", gone, json={"text": "x"})
    assert (response.status_code, response.text) == (404, "channel_not_found")


def test_webhooks_share_the_one_per_second_channel_limit(make_emulator, caller, clock) -> None:
    emulator = make_emulator()
    slack = caller(emulator)
    hook = emulator.webhook_paths[0]
    statuses = [slack.request("POST", hook, json={"text": "x"}).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = slack.request("POST", hook, json={"text": "x"})
    assert limited.headers["retry-after"] == "1"
    clock.advance(1)
    assert slack.request("POST", hook, json={"text": "x"}).status_code == 200
