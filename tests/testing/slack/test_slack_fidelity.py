"""Fidelity: the emulator's bodies have the shapes of Slack's own examples.

For every method the emulator serves, a success scenario and an error scenario run against it,
and the bodies are compared with the examples in Slack's OpenAPI spec
(``shared/reference/slack/slack_web_openapi_v2.json``: the 200 example and the ``default`` error
example) by :func:`shape_mismatches`: every key of the example, at every level, must be present
with the same JSON type (arrays: the first element is compared). The error scenarios reproduce
the *exact* code of the spec's error example. The files upload v2 methods are newer than the spec;
their success shapes come from Slack's docs as quoted in the research notes, and their error codes
are checked against the per-method docs in ``methods/``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.testing.slack import SlackEmulator

#: Keys Slack sends as ``null`` outside Enterprise Grid although the spec's example (an Enterprise
#: Grid install) shows an object.
NULLABLE_OBJECTS = frozenset({"enterprise"})
#: Arrays that are legitimately empty in the emulator's seed (a channel never renamed has no
#: previous names); every other array the example fills must have an element to compare.
MAY_BE_EMPTY = frozenset({"previous_names"})

JSON_TYPES: tuple[tuple[type, str], ...] = (
    (bool, "boolean"),
    (int, "number"),
    (float, "number"),
    (str, "string"),
    (list, "array"),
    (dict, "object"),
    (type(None), "null"),
)


def json_type(value: object) -> str:
    for python_type, name in JSON_TYPES:
        if isinstance(value, python_type):
            return name
    raise TypeError(f"not a JSON value: {value!r}")


def shape_mismatches(actual: object, example: object, path: str = "$") -> list[str]:
    """Where ``actual`` lacks a key of ``example`` or has another JSON type (recursively)."""
    expected_type, actual_type = json_type(example), json_type(actual)
    if expected_type == "null":
        return []  # the example says nothing about the type
    if actual_type != expected_type:
        key = path.rsplit(".", 1)[-1]
        if actual_type == "null" and key in NULLABLE_OBJECTS:
            return []
        return [f"{path}: expected {expected_type}, got {actual_type}"]
    problems: list[str] = []
    if isinstance(example, dict) and isinstance(actual, dict):
        for key, value in example.items():
            if key not in actual:
                problems.append(f"{path}.{key}: missing")
            else:
                problems.extend(shape_mismatches(actual[key], value, f"{path}.{key}"))
    elif isinstance(example, list) and isinstance(actual, list) and example:
        if not actual:
            if path.rsplit(".", 1)[-1] in MAY_BE_EMPTY:
                return []
            problems.append(f"{path}: empty array, example has elements")
        else:
            problems.extend(shape_mismatches(actual[0], example[0], f"{path}[0]"))
    return problems


# --- the comparator itself ---------------------------------------------------------------------


def test_comparator_accepts_extra_keys_and_equal_types() -> None:
    example = {"ok": True, "user": {"id": "U1", "n": 1}, "list": [{"a": "x"}]}
    actual = {"ok": False, "user": {"id": "U2", "n": 2, "more": 1}, "list": [{"a": "y", "b": 1}]}
    assert shape_mismatches(actual, example) == []


def test_comparator_reports_missing_nested_keys_and_wrong_types() -> None:
    example = {"user": {"profile": {"email": "a@b"}}, "ts": "1.0", "n": [{"x": 1}]}
    actual = {"user": {"profile": {}}, "ts": 1.0, "n": [{"x": "1"}]}
    assert shape_mismatches(actual, example) == [
        "$.user.profile.email: missing",
        "$.ts: expected string, got number",
        "$.n[0].x: expected number, got string",
    ]


def test_comparator_treats_booleans_apart_from_numbers_and_empty_arrays_as_missing() -> None:
    assert shape_mismatches({"a": 1}, {"a": True}) == ["$.a: expected boolean, got number"]
    assert shape_mismatches({"a": []}, {"a": [1]}) == ["$.a: empty array, example has elements"]


# --- the spec ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec_paths() -> dict[str, dict[str, object]]:
    repo_root = Path(__file__).resolve().parents[3]
    path = repo_root.parent / "shared" / "reference" / "slack" / "slack_web_openapi_v2.json"
    if not path.is_file():
        pytest.fail(f"Slack's OpenAPI spec not found at {path}: put shared/ beside the repository")
    spec = json.loads(path.read_text(encoding="utf-8"))
    paths: dict[str, dict[str, object]] = spec["paths"]
    return paths


def example(paths: dict[str, dict[str, object]], method: str, status: str) -> dict[str, object]:
    operations = paths[f"/{method}"]
    (operation,) = operations.values()
    assert isinstance(operation, dict)
    body = operation["responses"][status]["examples"]["application/json"]
    assert isinstance(body, dict)
    return body


Scenario = Callable[..., dict[str, object]]


def _post(
    slack, channel: str = "C00000001", text: str = "hello", **extra: object
) -> dict[str, object]:
    return slack.call("chat.postMessage", channel=channel, text=text, **extra)


def _thread(slack) -> str:
    parent = _post(slack)
    for n in range(3):
        _post(slack, thread_ts=parent["ts"], text=f"reply {n}")
    ts = parent["ts"]
    assert isinstance(ts, str)
    return ts


def _install(slack, emulator: SlackEmulator) -> dict[str, object]:
    code = emulator.create_oauth_code(
        scopes=["commands", "incoming-webhook"], user_scopes=["chat:write"]
    )
    return slack.call(
        "oauth.v2.access",
        token=None,
        client_id=emulator.config.client_id,
        client_secret=emulator.config.client_secret,
        code=code,
    )


def _not_own_message(slack, emulator: SlackEmulator) -> str:
    ts = emulator.channel("general").messages[0].ts
    return f"{ts // 1_000_000}.{ts % 1_000_000:06d}"


SUCCESS: dict[str, Scenario] = {
    "auth.test": lambda s, e: s.call("auth.test"),
    "chat.postMessage": lambda s, e: _post(
        s,
        username="ecto1",
        attachments=[{"fallback": "fb", "id": 1, "text": "This is an attachment"}],
    ),
    "chat.update": lambda s, e: s.call(
        "chat.update", channel="C00000001", ts=_post(s)["ts"], text="Updated"
    ),
    "chat.delete": lambda s, e: s.call("chat.delete", channel="C00000001", ts=_post(s)["ts"]),
    "chat.postEphemeral": lambda s, e: s.call(
        "chat.postEphemeral", channel="C00000001", user="U00000002", text="psst"
    ),
    "conversations.list": lambda s, e: s.call("conversations.list", limit=2),
    "conversations.history": lambda s, e: s.call(
        "conversations.history", channel="C00000001", limit=2
    ),
    "conversations.replies": lambda s, e: s.call(
        "conversations.replies", channel="C00000001", ts=_thread(s), limit=2
    ),
    "conversations.info": lambda s, e: s.call(
        "conversations.info", channel="C00000001", include_locale="true"
    ),
    "conversations.join": lambda s, e: s.call("conversations.join", channel="C00000001"),
    "users.list": lambda s, e: s.call("users.list", limit=2),
    "users.info": lambda s, e: s.call("users.info", user="U00000001"),
    "users.lookupByEmail": lambda s, e: s.call(
        "users.lookupByEmail", email="ada.lovelace@acme.example.com"
    ),
    "reactions.add": lambda s, e: s.call(
        "reactions.add", channel="C00000001", timestamp=_post(s)["ts"], name="thumbsup"
    ),
    "oauth.v2.access": _install,
    "auth.revoke": lambda s, e: s.call("auth.revoke", token=e.issue_token().access_token),
}


def _many_attachments(slack) -> dict[str, object]:
    return slack.call("chat.postMessage", channel="C00000001", attachments=[{"text": "a"}] * 101)


def _react_twice(slack) -> dict[str, object]:
    ts = _post(slack)["ts"]
    slack.call("reactions.add", channel="C00000001", timestamp=ts, name="tada")
    return slack.call("reactions.add", channel="C00000001", timestamp=ts, name="tada")


ERRORS: dict[str, Scenario] = {
    "auth.test": lambda s, e: s.call("auth.test", token="xoxb-not-a-token"),
    "chat.postMessage": lambda s, e: _many_attachments(s),
    "chat.update": lambda s, e: s.call(
        "chat.update", channel="C00000001", ts=_not_own_message(s, e), text="mine now"
    ),
    "chat.delete": lambda s, e: s.call("chat.delete", channel="C00000001", ts="1.000001"),
    "chat.postEphemeral": lambda s, e: s.call(
        "chat.postEphemeral", channel="C00000004", user="U00000020", text="psst"
    ),
    "conversations.list": lambda s, e: s.call("conversations.list", token="xoxb-bogus"),
    "conversations.history": lambda s, e: s.call("conversations.history", channel="C99999999"),
    "conversations.replies": lambda s, e: s.call(
        "conversations.replies", channel="C00000001", ts="1.000001"
    ),
    "conversations.info": lambda s, e: s.call("conversations.info", channel="C99999999"),
    "conversations.join": lambda s, e: s.call("conversations.join", channel="C00000007"),
    "users.list": lambda s, e: s.call("users.list", cursor="not-a-cursor"),
    "users.info": lambda s, e: s.call("users.info", user="U99999999"),
    "users.lookupByEmail": lambda s, e: s.call("users.lookupByEmail", email="nobody@example.com"),
    "reactions.add": lambda s, e: _react_twice(s),
    "oauth.v2.access": lambda s, e: s.call(
        "oauth.v2.access", token=None, client_id="999.999", client_secret="x", code="c"
    ),
    "auth.revoke": lambda s, e: s.call("auth.revoke", token="xoxp-unknown"),
}


@pytest.fixture
def seeded(make_emulator: Callable[..., SlackEmulator]) -> SlackEmulator:
    return make_emulator(rate_limits=False, messages_per_channel=5)


@pytest.mark.parametrize("method", sorted(SUCCESS))
def test_success_body_has_the_shape_of_the_spec_example(
    method: str,
    spec_paths: dict[str, dict[str, object]],
    seeded: SlackEmulator,
    caller,
) -> None:
    body = SUCCESS[method](caller(seeded), seeded)
    assert body["ok"] is True, body
    assert shape_mismatches(body, example(spec_paths, method, "200")) == []


@pytest.mark.parametrize("method", sorted(ERRORS))
def test_error_body_reproduces_the_spec_error_example(
    method: str,
    spec_paths: dict[str, dict[str, object]],
    seeded: SlackEmulator,
    caller,
) -> None:
    expected = example(spec_paths, method, "default")
    body = ERRORS[method](caller(seeded), seeded)
    assert body == {"ok": False, "error": expected["error"]}
    assert shape_mismatches(body, expected) == []


def test_every_method_the_emulator_serves_has_a_fidelity_scenario() -> None:
    from connectors.testing.slack.api import HANDLERS

    upload_v2 = {"files.getUploadURLExternal", "files.completeUploadExternal"}
    assert set(HANDLERS) == set(SUCCESS) | upload_v2
    assert set(ERRORS) == set(SUCCESS)


def test_the_spec_lacks_upload_v2_so_the_method_docs_are_used(
    spec_paths: dict[str, dict[str, object]],
) -> None:
    assert "/files.getUploadURLExternal" not in spec_paths
    assert "/files.completeUploadExternal" not in spec_paths


#: Success shapes of the upload v2 methods, from Slack's docs (research notes, part B6).
UPLOAD_URL_EXAMPLE = {
    "ok": True,
    "upload_url": "https://files.slack.com/upload/v1/ABC123",
    "file_id": "F123ABC456",
}
COMPLETE_EXAMPLE = {
    "ok": True,
    "files": [{"id": "F123ABC456", "title": "slack-test", "name": "slack-test.txt"}],
}


def test_upload_v2_bodies_have_the_documented_shapes_and_codes(
    seeded: SlackEmulator,
    caller,
    shared_path: Path,
) -> None:
    slack = caller(seeded)
    step1 = slack.call("files.getUploadURLExternal", filename="slack-test.txt", length=5)
    assert shape_mismatches(step1, UPLOAD_URL_EXAMPLE) == []
    upload_path = str(step1["upload_url"]).removeprefix("https://slack.test")
    assert slack.request("POST", upload_path, content=b"hello").status_code == 200
    files = [{"id": step1["file_id"], "title": "slack-test"}]
    done = slack.call("files.completeUploadExternal", files=files, channel_id="C00000001")
    assert shape_mismatches(done, COMPLETE_EXAMPLE) == []

    codes = {
        "files.getUploadURLExternal": slack.call(
            "files.getUploadURLExternal", filename="x.txt", length=0
        )["error"],
        "files.completeUploadExternal": slack.call(
            "files.completeUploadExternal", files=[{"id": "F404"}], channel_id="C00000001"
        )["error"],
    }
    methods = shared_path / "reference" / "slack" / "methods"
    for method, code in codes.items():
        documented = json.loads((methods / f"{method}.json").read_text(encoding="utf-8"))
        assert code in documented["errors"], (method, code)


ERROR_SWEEP: list[tuple[str, dict[str, object], str]] = [
    ("chat.postMessage", {"channel": "C00000002", "text": "x"}, "not_in_channel"),
    ("chat.postMessage", {"channel": "C00000007", "text": "x"}, "is_archived"),
    ("chat.postMessage", {"channel": "C00000001"}, "no_text"),
    ("chat.postMessage", {"channel": "C00000001", "blocks": [{"type": "d"}] * 51},
     "invalid_blocks"),
    ("chat.postMessage", {"channel": "C00000001", "blocks": "{"}, "invalid_blocks_format"),
    (
        "chat.postMessage",
        {"channel": "C00000001", "text": "a", "markdown_text": "b"},
        "markdown_text_conflict",
    ),
    ("chat.postMessage", {"channel": "nope", "text": "x"}, "channel_not_found"),
    ("chat.update", {"channel": "C00000001", "ts": "1.000001", "text": "x"}, "message_not_found"),
    ("chat.postEphemeral", {"channel": "C00000001", "user": "U1", "text": "x"},
     "user_not_in_channel"),
    ("chat.update", {"channel": "C00000001", "ts": "LAST", "text": "x" * 40_001}, "msg_too_long"),
    ("conversations.history", {"channel": "C00000002"}, "not_in_channel"),
    ("conversations.history", {"channel": "C00000001", "cursor": "zzz"}, "invalid_cursor"),
    ("conversations.history", {"channel": "C00000001", "oldest": "abc"}, "invalid_ts_oldest"),
    ("conversations.history", {"channel": "C00000001", "latest": "x.1"}, "invalid_ts_latest"),
    ("conversations.list", {"types": "dm"}, "invalid_types"),
    ("conversations.list", {"limit": 5000}, "invalid_limit"),
    ("conversations.join", {"channel": "C00000005"}, "method_not_supported_for_channel_type"),
    ("reactions.add", {"channel": "C00000001", "name": "x"}, "no_item_specified"),
    ("files.getUploadURLExternal", {"filename": "a", "length": 3, "alt_txt": "x" * 1001},
     "alt_txt_too_large"),
    ("files.completeUploadExternal", {"files": [{"id": "F1"}], "channels": "general"},
     "file_not_found"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "args", "code"), ERROR_SWEEP)
def test_errors_the_emulator_gives_are_documented_for_the_method(
    method: str,
    args: dict[str, object],
    code: str,
    emulator: SlackEmulator,
    caller,
) -> None:
    slack = caller(emulator)
    if args.get("ts") == "LAST":
        args = {**args, "ts": slack.call("chat.postMessage", channel="C00000001", text="a")["ts"]}
    body = slack.call(method, **args)
    assert body["error"] == code
    assert code in emulator.catalog.documented_errors(method), (method, code)
