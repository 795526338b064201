"""API key, Basic and Bearer flows: what goes on the wire, and nothing in reprs."""

from __future__ import annotations

import base64

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.auth import ApiKeyAuth, BasicAuth, BearerAuth
from connectors.auth.static import request_editor
from connectors.errors import DefinitionError
from connectors.secrets import Secret

URL = "https://api.example.test/v1/items?page=2"


def sent_with(auth: httpx2.Auth) -> httpx2.Request:
    seen: list[httpx2.Request] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200)

    with httpx2.Client(transport=httpx2.MockTransport(handle), auth=auth) as client:
        client.get(URL)
    return seen[0]


def test_api_key_in_the_default_header():
    request = sent_with(ApiKeyAuth(Secret("key-canary-1")))
    assert request.headers["X-API-Key"] == "key-canary-1"


def test_api_key_in_a_named_header_with_prefix():
    request = sent_with(ApiKeyAuth(Secret("key-canary-1"), header="Authorization", prefix="Token "))
    assert request.headers["Authorization"] == "Token key-canary-1"


def test_api_key_in_a_query_parameter_keeps_other_parameters():
    request = sent_with(ApiKeyAuth(Secret("key-canary-1"), query="api_key"))
    assert request.url.params["api_key"] == "key-canary-1"
    assert request.url.params["page"] == "2"
    assert "X-API-Key" not in request.headers


def test_api_key_configuration_errors():
    with pytest.raises(DefinitionError):
        ApiKeyAuth(Secret("key-canary-1"), header=None)
    with pytest.raises(DefinitionError):
        ApiKeyAuth(Secret("key-canary-1"), query="k", prefix="Token ")
    with pytest.raises(TypeError):
        ApiKeyAuth("clear-key")  # type: ignore[arg-type]


def test_basic_auth_header():
    request = sent_with(BasicAuth("alice", Secret("pässword:x9")))
    scheme, encoded = request.headers["Authorization"].split(" ")
    assert scheme == "Basic"
    assert base64.b64decode(encoded).decode() == "alice:pässword:x9"
    with pytest.raises(DefinitionError):
        BasicAuth("a:b", Secret("pw-x9"))


@given(
    user=st.from_regex(r"[A-Za-z0-9_.@-]{1,20}", fullmatch=True),
    pw=st.text(st.characters(exclude_categories=("Cs",)), min_size=1),
)
def test_basic_auth_round_trips_any_password(user, pw):
    request = httpx2.Request("GET", URL)
    flow = BasicAuth(user, Secret(pw)).auth_flow(request)
    out = next(flow)
    encoded = out.headers["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == f"{user}:{pw}"


def test_bearer_auth_header_and_custom_scheme():
    assert sent_with(BearerAuth(Secret("tok-canary-1"))).headers["Authorization"] == (
        "Bearer tok-canary-1"
    )
    assert sent_with(BearerAuth(Secret("tok-canary-1"), scheme="token")).headers[
        "Authorization"
    ] == ("token tok-canary-1")


def test_reprs_hide_the_credentials():
    flows = [
        ApiKeyAuth(Secret("key-canary-1")),
        ApiKeyAuth(Secret("key-canary-1"), query="k"),
        BasicAuth("alice", Secret("key-canary-1")),
        BearerAuth(Secret("key-canary-1")),
    ]
    for flow in flows:
        assert "key-canary-1" not in repr(flow)
        assert "key-canary-1" not in str(vars(flow)) if hasattr(flow, "__dict__") else True


@pytest.mark.parametrize(
    "auth",
    [
        ApiKeyAuth(Secret("key-canary-1")),
        ApiKeyAuth(Secret("key-canary-1"), query="api_key"),
        BasicAuth("alice", Secret("pw-canary-1")),
        BearerAuth(Secret("tok-canary-1")),
    ],
    ids=["header", "query", "basic", "bearer"],
)
def test_the_editor_does_what_the_flow_does(auth: httpx2.Auth):
    edit = request_editor(auth)
    assert edit is not None
    edited = httpx2.Request("GET", URL)
    edit(edited)
    driven = sent_with(auth)
    assert edited.url == driven.url
    for name in ("authorization", "x-api-key"):
        assert edited.headers.get(name) == driven.headers.get(name)


def test_a_subclass_that_changes_the_flow_is_driven_not_edited():
    class Countersigned(BearerAuth):
        def auth_flow(self, request):
            request.headers["X-Signed"] = "yes"
            yield from super().auth_flow(request)

    class NeedsBody(BearerAuth):
        requires_request_body = True

    assert request_editor(Countersigned(Secret("t"))) is None
    assert request_editor(NeedsBody(Secret("t"))) is None
    assert request_editor(httpx2.BasicAuth("a", "b")) is None  # not ours: no offer
    assert request_editor(None) is None
    assert sent_with(Countersigned(Secret("t"))).headers["X-Signed"] == "yes"


def test_an_editing_auth_without_an_edit_cannot_be_built():
    from connectors.auth import EditingAuth

    class Unfinished(EditingAuth):
        pass

    with pytest.raises(TypeError, match="abstract"):
        Unfinished()  # type: ignore[abstract]
