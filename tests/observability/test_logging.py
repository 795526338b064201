"""Logging: explicit idempotent set-up, JSON lines, cheap filtering, context and redaction."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator, MutableMapping

import pytest

from connectors.context import CallContext, use_context
from connectors.errors import InvalidSetting
from connectors.observability.logging import (
    add_call_context,
    configure_logging,
    get_logger,
    reset_logging,
)
from connectors.observability.redaction import MASK, Redactor
from connectors.secrets import Secret


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_has_timestamp_level_event_and_bound_fields() -> None:
    out = io.StringIO()
    configure_logging("INFO", "json", stream=out)
    log = get_logger("connectors.test").bind(tenant="acme", connector="salesforce")
    log.info("operation.failure", operation="create", request_id="r1", attempt=2)
    [line] = lines(out)
    assert list(line)[:3] == ["timestamp", "level", "event"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", str(line["timestamp"]))
    assert line["level"] == "info"
    assert line["event"] == "operation.failure"
    assert line["logger"] == "connectors.test"
    for key, value in {
        "tenant": "acme",
        "connector": "salesforce",
        "operation": "create",
        "request_id": "r1",
        "attempt": 2,
    }.items():
        assert line[key] == value


def test_events_below_the_level_are_dropped() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = get_logger("t")
    log.debug("hidden")
    log.info("shown")
    assert [line["event"] for line in lines(out)] == ["shown"]
    assert not log.is_enabled_for("DEBUG")
    assert log.is_enabled_for("ERROR")


def test_loggers_made_before_configuration_follow_it() -> None:
    log = get_logger("early").bind(connector="sf")  # e.g. at module import time
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    log.debug("now visible")
    configure_logging("ERROR", stream=out)
    log.warning("filtered again")
    assert [line["event"] for line in lines(out)] == ["now visible"]


def test_configuring_twice_is_idempotent() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    configure_logging("INFO", stream=out)
    get_logger("t").info("once")
    assert len(lines(out)) == 1


def test_unconfigured_default_writes_warnings_as_json_to_stderr(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = get_logger("t")
    log.info("not shown")
    log.warning("shown")
    err = capsys.readouterr().err.splitlines()
    assert [json.loads(line)["event"] for line in err] == ["shown"]


def test_console_format_renders_text() -> None:
    out = io.StringIO()
    configure_logging("INFO", "console", stream=out)
    get_logger("t").info("hello", tenant="acme")
    text = out.getvalue()
    assert "hello" in text
    assert "tenant=acme" in text
    assert not text.startswith("{")


@pytest.mark.parametrize(("level", "fmt"), [("LOUD", "json"), ("INFO", "xml")])
def test_invalid_configuration_is_an_invalid_setting(level: str, fmt: str) -> None:
    with pytest.raises(InvalidSetting):
        configure_logging(level, fmt)


def test_call_context_fields_are_added_when_a_call_runs() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = get_logger("t")
    ctx = CallContext(tenant="acme", actor="alice", request_id="req-1")
    with use_context(ctx):
        log.info("inside")
        log.info("explicit wins", tenant="other")
    log.info("outside")
    inside, explicit, outside = lines(out)
    assert (inside["tenant"], inside["actor"], inside["request_id"]) == ("acme", "alice", "req-1")
    assert explicit["tenant"] == "other"
    assert "tenant" not in outside


def test_add_call_context_without_context_changes_nothing() -> None:
    assert add_call_context(None, "info", {"event": "x"}) == {"event": "x"}


def test_secrets_are_redacted_in_every_emitted_line() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    secret = Secret("emitted-secret-value")
    log = get_logger("t").bind(password="p", auth="Bearer abcdef")
    log.info("leaked emitted-secret-value", nested={"k": ["emitted-secret-value"]}, s=secret)
    text = out.getvalue()
    assert "emitted-secret-value" not in text
    assert "abcdef" not in text
    [line] = lines(out)
    assert line["password"] == MASK
    assert line["s"] == MASK


def test_exception_text_is_rendered_and_redacted() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    secret = Secret("in-exception-value")
    try:
        raise RuntimeError("provider echoed in-exception-value")
    except RuntimeError:
        get_logger("t").exception("failed")
    [line] = lines(out)
    assert line["level"] == "error"
    assert "RuntimeError" in str(line["exception"])
    assert "in-exception-value" not in out.getvalue()
    del secret


def test_extra_processors_run_before_redaction() -> None:
    def add_leak(
        logger: object, method: str, event: MutableMapping[str, object]
    ) -> MutableMapping[str, object]:
        event["added"] = "late-added-value"
        return event

    out = io.StringIO()
    configure_logging(
        "INFO",
        stream=out,
        extra_processors=[add_leak],
        redactor=Redactor(sources=(), secrets=["late-added-value"]),
    )
    get_logger("t").info("x")
    assert lines(out)[0]["added"] == MASK


def test_bind_new_unbind() -> None:
    log = get_logger("t", a=1).bind(b=2)
    assert log.context == {"logger": "t", "a": 1, "b": 2}
    assert log.unbind("a").context == {"logger": "t", "b": 2}
    assert log.try_unbind("zzz", "b").context == {"logger": "t", "a": 1}
    assert log.new(c=3).context == {"logger": "t", "c": 3}
    with pytest.raises(KeyError):
        log.unbind("zzz")


def test_every_level_method_emits() -> None:
    out = io.StringIO()
    configure_logging("DEBUG", stream=out)
    log = get_logger("t")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.warn("w2")
    log.error("e")
    log.critical("c")
    log.log(20, "l")
    assert [(line["level"], line["event"]) for line in lines(out)] == [
        ("debug", "d"),
        ("info", "i"),
        ("warning", "w"),
        ("warning", "w2"),
        ("error", "e"),
        ("critical", "c"),
        ("info", "l"),
    ]


def test_importing_adds_no_handlers_and_configures_nothing() -> None:
    code = (
        "import logging, structlog\n"
        "import connectors.observability.logging as m\n"
        "m.get_logger('x')\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "assert not structlog.is_configured()\n"
        "assert not m._state.processors\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
