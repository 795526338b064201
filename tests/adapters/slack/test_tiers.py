"""The embedded tier table agrees with Slack's per-method docs (shared/reference when present)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from connectors.adapters.slack import SlackConnector
from connectors.adapters.slack.tiers import DEFAULT_TIER, METHOD_TIERS, Tier, tier_of

REFERENCE = Path(__file__).resolve().parents[4] / "shared" / "reference" / "slack" / "methods"
_TIER = re.compile(r"Tier\s+(\d)")


def _reference() -> dict[str, dict[str, object]]:
    if not REFERENCE.is_dir():
        pytest.fail(f"Slack reference docs not found at {REFERENCE}: clone beside shared/")
    return {
        path.stem: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(REFERENCE.glob("*.json"))
        if not path.name.startswith("_")
    }


def test_the_table_matches_the_reference_files():
    docs = _reference()
    for method, doc in docs.items():
        label = str(doc["rate_limit"]["label"])  # type: ignore[index]
        match = _TIER.search(label)
        expected = Tier(int(match.group(1))) if match else Tier.SPECIAL
        assert METHOD_TIERS.get(method) == expected, method
    assert set(docs) <= set(METHOD_TIERS)


def test_operation_scopes_are_among_the_documented_bot_scopes():
    docs = _reference()
    methods = {
        "post_message": "chat.postMessage",
        "update_message": "chat.update",
        "delete_message": "chat.delete",
        "post_ephemeral": "chat.postEphemeral",
        "add_reaction": "reactions.add",
        "list_conversations": "conversations.list",
        "history": "conversations.history",
        "replies": "conversations.replies",
        "join": "conversations.join",
        "list_users": "users.list",
        "user_info": "users.info",
        "lookup_user_by_email": "users.lookupByEmail",
        "upload_file": "files.getUploadURLExternal",
    }
    for op, method in methods.items():
        bot = {s["name"] for s in docs[method]["scopes"]["bot"]}  # type: ignore[index]
        assert set(SlackConnector.operations()[op].scopes) <= bot, op


def test_tiers_know_their_floor_per_minute():
    assert [t.per_minute for t in Tier] == [None, 1, 20, 50, 100]


def test_unknown_methods_default_to_tier_two():
    assert tier_of("pins.add") is DEFAULT_TIER is Tier.TIER_2
    assert tier_of("chat.postMessage") is Tier.SPECIAL
