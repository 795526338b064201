"""ResponseClassifier: every status rule, Retry-After, excerpts and redaction, rules, exceptions."""

from __future__ import annotations

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectionFailed,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from connectors.http.classify import ACCEPT, EXCERPT_CHARS, ResponseClassifier

# FakeClock's wall clock starts at 1_700_000_000 = Tue, 14 Nov 2023 22:13:20 GMT.
IN_60_SECONDS = "Tue, 14 Nov 2023 22:14:20 GMT"


def classifier(**kw) -> ResponseClassifier:
    return ResponseClassifier(clock=FakeClock(), **kw)


def response(status: int, body: str | bytes = b"", headers=None) -> httpx2.Response:
    content = body.encode() if isinstance(body, str) else body
    return httpx2.Response(status, content=content, headers=headers)


# --- the status table -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204, 206, 299, 301, 302, 304, 307, 399])
def test_2xx_and_3xx_are_success(status):
    assert classifier().classify(response(status)) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, InvalidRequest),
        (422, InvalidRequest),
        (401, AuthenticationFailed),
        (403, AuthorizationError),
        (404, NotFound),
        (408, ServiceUnavailable),
        (409, Conflict),
        (429, RateLimited),
        (402, PermanentError),
        (405, PermanentError),
        (410, PermanentError),
        (413, PermanentError),
        (499, PermanentError),
        (500, ServiceUnavailable),
        (502, ServiceUnavailable),
        (503, ServiceUnavailable),
        (504, ServiceUnavailable),
        (599, ServiceUnavailable),
        (100, AmbiguousOutcome),
    ],
)
def test_status_maps_to_its_error_class(status, expected):
    err = classifier().classify(response(status))
    assert type(err) is expected
    assert err.status == status


def test_error_message_names_status_and_reason():
    err = classifier().classify(response(404))
    assert err.message == "provider answered HTTP 404 Not Found"


def test_401_and_403_carry_a_hint_saying_what_to_do():
    assert "credential" in classifier().classify(response(401)).hint
    assert "permission" in classifier().classify(response(403)).hint


# --- Retry-After ------------------------------------------------------------------------------


def test_429_carries_retry_after_in_delta_seconds():
    err = classifier().classify(response(429, headers={"Retry-After": "30"}))
    assert isinstance(err, RateLimited)
    assert err.retry_after == 30.0


def test_429_carries_retry_after_as_http_date_against_the_injected_wall_clock():
    err = classifier().classify(response(429, headers={"Retry-After": IN_60_SECONDS}))
    assert err.retry_after == 60.0


def test_http_date_follows_the_clock_not_the_real_time():
    clock = FakeClock()
    clock.advance(20)
    err = ResponseClassifier(clock=clock).classify(
        response(429, headers={"Retry-After": IN_60_SECONDS})
    )
    assert err.retry_after == 40.0


def test_429_without_retry_after_is_still_rate_limited():
    err = classifier().classify(response(429))
    assert type(err) is RateLimited
    assert err.retry_after is None


def test_503_with_retry_after_is_rate_limited():
    err = classifier().classify(response(503, headers={"Retry-After": "7"}))
    assert type(err) is RateLimited
    assert err.retry_after == 7.0
    assert err.status == 503


def test_503_with_unusable_retry_after_is_service_unavailable():
    err = classifier().classify(response(503, headers={"Retry-After": "whenever"}))
    assert type(err) is ServiceUnavailable
    assert err.retry_after is None


def test_other_5xx_keep_retry_after_when_present():
    err = classifier().classify(response(502, headers={"Retry-After": IN_60_SECONDS}))
    assert type(err) is ServiceUnavailable
    assert err.retry_after == 60.0


def test_408_keeps_retry_after_when_present():
    err = classifier().classify(response(408, headers={"Retry-After": "3"}))
    assert type(err) is ServiceUnavailable
    assert err.retry_after == 3.0


def test_past_retry_after_date_gives_no_retry_after():
    err = classifier().classify(
        response(429, headers={"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"})
    )
    assert err.retry_after is None


# --- body excerpt and redaction ---------------------------------------------------------------


def test_message_carries_a_short_body_excerpt():
    err = classifier().classify(response(400, '{"error": "name is required"}'))
    assert err.message.endswith(': {"error": "name is required"}')


def test_excerpt_is_at_most_200_characters():
    err = classifier().classify(response(500, "x" * 5000))
    excerpt = err.message.split(": ", 1)[1]
    assert len(excerpt) == EXCERPT_CHARS
    assert excerpt.endswith("…")


def test_excerpt_collapses_whitespace_onto_one_line():
    err = classifier().classify(response(500, "<html>\n  <body>\n\tdown\n</body></html>"))
    assert err.message.endswith(": <html> <body> down </body></html>")


def test_redaction_hook_sees_the_body_before_it_reaches_the_error():
    def redact(text: str) -> str:
        return text.replace("sk-live-SECRET", "[REDACTED]")

    body = '{"error": "bad token sk-live-SECRET"}'
    err = classifier(redact=redact).classify(response(401, body))
    assert "sk-live-SECRET" not in str(err)
    assert "[REDACTED]" in err.message


def test_a_token_straddling_the_excerpt_limit_is_redacted_before_truncation():
    token = "tok_" + "A" * 40
    body = "y" * (EXCERPT_CHARS - 10) + token

    def redact(text: str) -> str:
        return text.replace(token, "***")

    err = classifier(redact=redact).classify(response(500, body))
    assert "tok_" not in err.message
    assert err.message.endswith("***")


def test_redaction_that_expands_text_still_respects_the_limit():
    err = classifier(redact=lambda t: t * 10).classify(response(500, "abc" * 100))
    assert len(err.message.split(": ", 1)[1]) == EXCERPT_CHARS


def test_with_redactor_returns_a_copy_that_redacts():
    base = classifier()
    redacting = base.with_redactor(lambda text: text.replace("hunter2", "*"))
    assert "hunter2" in base.classify(response(400, "pw hunter2")).message
    assert "hunter2" not in redacting.classify(response(400, "pw hunter2")).message


def test_empty_body_gives_a_message_without_excerpt():
    assert classifier().classify(response(409)).message == "provider answered HTTP 409 Conflict"


def test_unread_streaming_body_gives_no_excerpt_and_does_not_raise():
    async def chunks():
        yield b"never read"

    streamed = httpx2.Response(500, content=chunks())
    err = classifier().classify(streamed)
    assert err.message == "provider answered HTTP 500 Internal Server Error"


def test_unknown_charset_falls_back_to_utf8():
    err = classifier().classify(
        response(400, "caf\u00e9", headers={"Content-Type": "text/plain; charset=no-such"})
    )
    assert err.message.endswith(": café")


# --- provider code hook -----------------------------------------------------------------------


def sf_code(resp: httpx2.Response) -> str | None:
    return resp.json()[0]["errorCode"]


def test_provider_code_hook_fills_the_error_code():
    body = '[{"errorCode": "REQUIRED_FIELD_MISSING", "message": "x"}]'
    err = classifier(provider_code=sf_code).classify(response(400, body))
    assert err.provider_code == "REQUIRED_FIELD_MISSING"
    assert err.code == "REQUIRED_FIELD_MISSING"


def test_a_failing_provider_code_hook_does_not_hide_the_error():
    err = classifier(provider_code=sf_code).classify(response(502, "<html>Bad gateway</html>"))
    assert type(err) is ServiceUnavailable
    assert err.provider_code is None


def test_provider_code_hook_is_not_called_on_success():
    called = []
    c = classifier(provider_code=lambda r: called.append(r) or "X")
    assert c.classify(response(200, "{}")) is None
    assert called == []


# --- adapter rules ----------------------------------------------------------------------------


def slack_rule(resp: httpx2.Response, c: ResponseClassifier):
    if resp.status_code == 200 and resp.json().get("ok") is False:
        if resp.json()["error"] == "ratelimited":
            return c.error(RateLimited, resp, "Slack rate limited", retry_after=1.0)
        return c.error(InvalidRequest, resp, "Slack refused the call")
    return None


def test_a_rule_can_turn_a_200_into_an_error():
    c = classifier(rules=[slack_rule])
    err = c.classify(response(200, '{"ok": false, "error": "channel_not_found"}'))
    assert type(err) is InvalidRequest
    assert err.status == 200
    assert err.message.startswith("Slack refused the call: ")


def test_rule_built_transient_errors_carry_retry_after():
    err = classifier(rules=[slack_rule]).classify(
        response(200, '{"ok": false, "error": "ratelimited"}')
    )
    assert type(err) is RateLimited
    assert err.retry_after == 1.0


def test_a_rule_with_no_opinion_falls_through_to_the_table():
    c = classifier(rules=[slack_rule])
    assert c.classify(response(200, '{"ok": true}')) is None
    assert type(c.classify(response(404, "{}"))) is NotFound


def test_a_rule_can_accept_an_error_status():
    def gone_is_fine(resp, c):
        return ACCEPT if resp.status_code == 404 else None

    assert classifier(rules=[gone_is_fine]).classify(response(404)) is None


def test_with_rules_puts_new_rules_first_and_leaves_the_original_alone():
    base = classifier(rules=[lambda r, c: c.error(Conflict, r)])
    extended = base.with_rules(lambda r, c: ACCEPT)
    assert extended.classify(response(200)) is None
    assert type(base.classify(response(200))) is Conflict


def test_subclasses_can_override_the_status_table():
    class GoneIsNotFound(ResponseClassifier):
        def classify_status(self, response: httpx2.Response) -> ConnectorError:
            if response.status_code == 410:
                return self.error(NotFound, response)
            return super().classify_status(response)

    c = GoneIsNotFound(clock=FakeClock())
    assert type(c.classify(response(410))) is NotFound
    assert type(c.classify(response(409))) is Conflict
    assert type(c.with_rules().classify(response(410))) is NotFound


# --- transport exceptions ---------------------------------------------------------------------


def _req() -> httpx2.Request:
    return httpx2.Request("POST", "https://api.example.com/x")


@pytest.mark.parametrize(
    ("exc", "expected", "request_sent"),
    [
        (httpx2.ConnectError("refused"), ConnectionFailed, False),
        (httpx2.ProxyError("proxy down"), ConnectionFailed, False),
        (httpx2.PoolTimeout("pool"), ConnectionFailed, False),
        (httpx2.ConnectTimeout("slow connect"), Timeout, False),
        (httpx2.ReadTimeout("slow read"), Timeout, True),
        (httpx2.WriteTimeout("slow write"), Timeout, True),
        (httpx2.RemoteProtocolError("Server disconnected"), AmbiguousOutcome, True),
        (httpx2.ReadError("reset by peer"), AmbiguousOutcome, True),
        (httpx2.WriteError("broken pipe"), AmbiguousOutcome, True),
        (httpx2.CloseError("close"), AmbiguousOutcome, True),
        (httpx2.DecodingError("bad gzip"), AmbiguousOutcome, True),
    ],
)
def test_transport_exception_maps_to_typed_error(exc, expected, request_sent):
    err = classifier().classify_exception(exc)
    assert type(err) is expected
    assert err.request_sent is request_sent
    assert err.retryable


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx2.LocalProtocolError("bad header"), InvalidRequest),
        (httpx2.UnsupportedProtocol("ftp"), InvalidRequest),
        (httpx2.InvalidURL("bad url"), InvalidRequest),
        (httpx2.TooManyRedirects("loop"), PermanentError),
    ],
)
def test_malformed_requests_are_permanent(exc, expected):
    err = classifier().classify_exception(exc)
    assert type(err) is expected
    assert not err.retryable


def test_foreign_exceptions_are_not_classified():
    assert classifier().classify_exception(ValueError("boom")) is None
    assert classifier().classify_exception(KeyboardInterrupt()) is None


def test_exception_message_names_the_failure_and_is_redacted():
    c = classifier(redact=lambda t: t.replace("secret-host", "***"))
    err = c.classify_exception(httpx2.ConnectError("cannot reach secret-host"))
    assert err.message == "could not connect to the provider (ConnectError: cannot reach ***)"


def test_exception_detail_is_bounded():
    err = classifier().classify_exception(httpx2.ReadError("z" * 10_000))
    assert len(err.message) < 300


# --- property: every status code -----------------------------------------------------------


def expected_family(status: int, retry_after_usable: bool) -> type[ConnectorError] | None:
    if 200 <= status < 400:
        return None
    if status < 200:
        return AmbiguousOutcome
    if status == 429 or (status == 503 and retry_after_usable):
        return RateLimited
    if status >= 500 or status == 408:
        return ServiceUnavailable
    return {
        400: InvalidRequest,
        422: InvalidRequest,
        401: AuthenticationFailed,
        403: AuthorizationError,
        404: NotFound,
        409: Conflict,
    }.get(status, PermanentError)


RETRY_AFTER_VALUES = {
    None: False,
    "12": True,
    IN_60_SECONDS: True,
    "Tue, 14 Nov 2023 22:00:00 GMT": False,  # past
    "later": False,
}


@given(
    status=st.integers(min_value=100, max_value=599),
    retry_after=st.sampled_from(list(RETRY_AFTER_VALUES)),
    body=st.binary(max_size=600),
)
def test_every_status_maps_to_exactly_one_expected_family_and_never_raises(
    status, retry_after, body
):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    err = classifier(provider_code=sf_code).classify(response(status, body, headers))
    expected = expected_family(status, RETRY_AFTER_VALUES[retry_after])
    if expected is None:
        assert err is None
        return
    assert type(err) is expected
    assert err.status == status
    excerpt = err.message.partition(": ")[2]
    assert len(excerpt) <= EXCERPT_CHARS
    if isinstance(err, RateLimited | ServiceUnavailable) and RETRY_AFTER_VALUES[retry_after]:
        assert err.retry_after is not None
        assert err.retry_after > 0
