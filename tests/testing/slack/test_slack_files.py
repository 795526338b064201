"""The files upload v2 flow: URL, raw or multipart upload, completion by channel id."""

from __future__ import annotations

import json


def _start(slack, name="report.csv", data=b"a,b\n1,2\n"):
    step1 = slack.call("files.getUploadURLExternal", filename=name, length=len(data))
    assert step1["ok"] is True
    assert step1["upload_url"].startswith("https://slack.test/upload/")
    return step1, step1["upload_url"].removeprefix("https://slack.test")


def test_upload_by_channel_id_shares_the_file_into_the_channel(slack, emulator) -> None:
    step1, path = _start(slack)
    uploaded = slack.request("POST", path, content=b"a,b\n1,2\n")
    assert (uploaded.status_code, uploaded.text) == (200, "OK - 8")
    assert uploaded.headers["content-type"].startswith("text/plain")
    done = slack.call(
        "files.completeUploadExternal",
        files=json.dumps([{"id": step1["file_id"], "title": "Q3"}]),
        channel_id="C00000001",
        initial_comment="numbers",
    )
    assert done["files"][0]["id"] == step1["file_id"]
    assert done["files"][0]["title"] == "Q3"
    assert done["files"][0]["shares"] == {}  # Slack shares asynchronously
    message = slack.call("conversations.history", channel="C00000001")["messages"][0]
    assert message["text"] == "numbers"
    assert message["files"][0]["id"] == step1["file_id"]
    assert emulator.state.files[step1["file_id"]].content == b"a,b\n1,2\n"


def test_channel_name_instead_of_id_fails_like_slack(slack) -> None:
    step1, path = _start(slack)
    slack.request("POST", path, content=b"a,b\n1,2\n")
    files = [{"id": step1["file_id"]}]
    by_name = slack.call("files.completeUploadExternal", files=files, channel_id="general")
    assert by_name == {"ok": False, "error": "channel_not_found"}
    hashed = slack.call("files.completeUploadExternal", files=files, channel_id="#general")
    assert hashed["error"] == "channel_not_found"
    listed = slack.call("files.completeUploadExternal", files=files, channels="general")
    assert listed["error"] == "invalid_channel"
    assert slack.call("files.completeUploadExternal", files=files, channels="C00000001,C00000004")[
        "ok"
    ]


def test_multipart_upload_is_accepted(slack, emulator) -> None:
    step1, path = _start(slack, "pic.png", b"\x89PNG....")
    uploaded = slack.request("POST", path, files={"file": ("pic.png", b"\x89PNG....", "image/png")})
    assert (uploaded.status_code, uploaded.text) == (200, "OK - 8")
    assert emulator.state.files[step1["file_id"]].content == b"\x89PNG...."


def test_completing_before_uploading_is_file_not_found(slack) -> None:
    step1, _ = _start(slack)
    answer = slack.call(
        "files.completeUploadExternal", files=[{"id": step1["file_id"]}], channel_id="C00000001"
    )
    assert answer["error"] == "file_not_found"


def test_sharing_needs_membership(slack) -> None:
    step1, path = _start(slack)
    slack.request("POST", path, content=b"x")
    answer = slack.call(
        "files.completeUploadExternal", files=[{"id": step1["file_id"]}], channel_id="C00000002"
    )
    assert answer["error"] == "not_in_channel"


def test_zero_length_and_unknown_upload_ids(slack) -> None:
    assert slack.call("files.getUploadURLExternal", filename="a", length=0)["error"] == (
        "missing_argument"
    )
    assert slack.call("files.getUploadURLExternal", filename="a")["error"] == "invalid_arguments"
    assert slack.request("POST", "/upload/F404", content=b"x").status_code == 404


def test_without_a_channel_the_file_stays_private(slack, emulator) -> None:
    step1, path = _start(slack)
    slack.request("POST", path, content=b"x")
    answer = slack.call("files.completeUploadExternal", files=[{"id": step1["file_id"]}])
    assert answer["ok"] is True
    assert emulator.state.files[step1["file_id"]].channels == []


def test_too_many_channels_is_channels_limit_exceeded(slack) -> None:
    step1, path = _start(slack)
    slack.request("POST", path, content=b"x")
    channels = ",".join(["C00000001"] * 101)
    answer = slack.call(
        "files.completeUploadExternal", files=[{"id": step1["file_id"]}], channels=channels
    )
    assert answer["error"] == "channels_limit_exceeded"
