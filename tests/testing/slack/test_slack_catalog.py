"""The method catalog: loaded from Slack's method docs, with an embedded fallback that agrees."""

from __future__ import annotations

from pathlib import Path

from connectors.testing.slack.catalog import (
    EMBEDDED,
    SPECIAL,
    embedded_catalog,
    load_catalog,
)


def test_embedded_facts_match_the_method_docs(shared_path: Path) -> None:
    loaded = load_catalog(shared_path / "reference" / "slack")
    assert loaded.source.endswith("methods")
    for name in EMBEDDED:
        spec, fallback = loaded[name], embedded_catalog()[name]
        assert (spec.tier, spec.bot_scopes, spec.user_scopes) == (
            fallback.tier,
            fallback.bot_scopes,
            fallback.user_scopes,
        ), name


def test_every_documented_method_is_embedded(shared_path: Path) -> None:
    documented = {
        p.stem
        for p in (shared_path / "reference" / "slack" / "methods").glob("*.json")
        if not p.name.startswith("_")
    }
    assert documented <= set(EMBEDDED)


def test_missing_reference_directory_falls_back_to_the_embedded_table(tmp_path: Path) -> None:
    catalog = load_catalog(tmp_path / "nowhere")
    assert catalog.source == "embedded"
    assert catalog["users.info"].tier == 4
    assert catalog["conversations.list"].tier == 2
    assert catalog["chat.postMessage"].tier == SPECIAL
    assert catalog["chat.postMessage"].per_minute is None


def test_loaded_catalog_carries_documented_and_common_errors(shared_path: Path) -> None:
    catalog = load_catalog(shared_path / "reference" / "slack")
    errors = catalog.documented_errors("chat.postMessage")
    assert {"not_in_channel", "channel_not_found", "invalid_auth", "ratelimited"} <= errors
    assert catalog["users.lookupByEmail"].scopes_for("bot") == ("users:read.email",)
    assert catalog["conversations.join"].scopes_for("user") == ("channels:write",)
