import pickle

import pytest

from connectors import errors as e


def test_every_error_descends_from_connector_error():
    for name in e.__all__:
        obj = getattr(e, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, e.ConnectorError), name


@pytest.mark.parametrize(
    ("cls", "family"),
    [
        (e.RateLimited, e.TransientError),
        (e.ServiceUnavailable, e.TransientError),
        (e.ConnectionFailed, e.TransientError),
        (e.Timeout, e.TransientError),
        (e.NotFound, e.PermanentError),
        (e.Conflict, e.PermanentError),
        (e.InvalidRequest, e.PermanentError),
        (e.ScopeDenied, e.AuthError),
        (e.AccessDenied, e.AuthError),
        (e.ReauthorizationRequired, e.AuthenticationFailed),
        (e.InvalidSetting, e.ConfigurationError),
        (e.UnknownConnector, e.ConfigurationError),
    ],
)
def test_errors_are_split_by_what_the_caller_should_do(cls, family):
    assert issubclass(cls, family)


def test_error_carries_context_and_says_it():
    err = e.NotFound(
        "no such record",
        connector="salesforce",
        tenant="acme",
        operation="get",
        request_id="r1",
        provider_code="NOT_FOUND",
        status=404,
    )
    text = str(err)
    for part in ("no such record", "connector=salesforce", "tenant=acme", "operation=get"):
        assert part in text
    assert err.code == "NOT_FOUND"
    assert err.context()["status"] == 404


def test_with_context_fills_only_missing_fields():
    err = e.ServiceUnavailable("down", tenant="a")
    err.with_context(tenant="b", connector="x", operation="op", request_id="r")
    assert (err.tenant, err.connector, err.operation, err.request_id) == ("a", "x", "op", "r")


def test_rate_limited_carries_retry_after_and_is_retryable():
    err = e.RateLimited(retry_after=2.5, quota="api-usage")
    assert err.retry_after == 2.5
    assert err.retryable
    assert err.quota == "api-usage"


def test_connection_failed_is_known_unsent_and_timeout_knows_if_sent():
    assert e.ConnectionFailed("refused").request_sent is False
    assert e.Timeout("slow", request_sent=False).request_sent is False
    assert e.AmbiguousOutcome("dropped").request_sent is True


def test_invalid_request_lists_fields():
    err = e.InvalidRequest(
        "rejected", fields=[e.FieldError("LastName", "required", "REQUIRED_FIELD_MISSING")]
    )
    assert "LastName: required" in str(err)


def test_invalid_setting_never_echoes_a_secret_looking_value():
    err = e.InvalidSetting("CONNECTOR_MASTER_KEYS", "s3cr3t-value", "kid:base64 entries")
    assert "s3cr3t-value" not in str(err)
    err2 = e.InvalidSetting("CONNECTOR_RETRY_MAX_ATTEMPTS", "abc", "an integer from 1 to 100")
    assert "'abc'" in str(err2)
    assert "CONNECTOR_RETRY_MAX_ATTEMPTS" in str(err2)


def test_unknown_connector_suggests():
    err = e.UnknownConnector("salesforc", ["salesforce", "slack"], ["salesforce"])
    assert "did you mean 'salesforce'" in str(err)
    assert "slack" in str(err)


def test_errors_pickle_with_their_context():
    err = e.RateLimited("slow down", retry_after=3, tenant="t", connector="c")
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is e.RateLimited
    assert clone.retry_after == 3
    assert clone.tenant == "t"
    assert str(clone) == str(err)


def test_definition_error_names_file_line_and_column():
    err = e.DefinitionError("bad key", file="a.yaml", line=3, column=7, hint="remove it")
    assert str(err).startswith("a.yaml:3:7: bad key")
    assert "Hint: remove it" in str(err)


def test_scope_denied_lists_missing():
    err = e.ScopeDenied("no", needed=("a", "b"), provided=("a",))
    assert err.missing == ("b",)
