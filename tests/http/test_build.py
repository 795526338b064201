"""quick_request builds exactly what httpx2's build_request builds, or declines."""

from __future__ import annotations

import string

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.http.build import ClientHeaders, quick_request

BASE = "https://api.example.com:8443/v1/"
URL = httpx2.URL(BASE + "chat.postMessage")
RID = "req_0123456789abcdef"

_names = st.text(string.ascii_letters + "-", min_size=1, max_size=12).filter(
    lambda n: (
        n.lower() not in {"host", "content-length", "transfer-encoding", "x-request-id"}
        and n.lower() != "cookie"
    )
)
_values = st.text(string.printable.strip() + " ", max_size=20)
_forms = st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4)


_CLIENT = httpx2.AsyncClient(base_url=BASE)  # one client: building one makes an SSL context


def _client(headers: dict[str, str]) -> httpx2.AsyncClient:
    _CLIENT.headers = headers  # httpx2's defaults, updated with these
    _CLIENT.cookies.clear()
    return _CLIENT


def _reference(
    client: httpx2.AsyncClient,
    method: str,
    *,
    content: bytes | None,
    data: dict[str, str] | None,
    headers: dict[str, str] | None,
) -> httpx2.Request:
    """What ConnectorHttpClient built before the quick path (and still builds otherwise)."""
    if headers:
        merged: dict[str, str] | None = {**headers, "X-Request-Id": RID}
    elif content is None and data is None:
        merged = None
    else:
        merged = {"X-Request-Id": RID}
    request = client.build_request(
        method,
        URL,
        content=content,
        data=data,
        headers=merged,
        extensions={"timeout": None},
    )
    if merged is None:
        request.headers["X-Request-Id"] = RID
    return request


def _same(quick: httpx2.Request, reference: httpx2.Request) -> None:
    assert quick.method == reference.method
    assert quick.url == reference.url
    assert quick.headers.raw == reference.headers.raw
    assert quick.headers.encoding == reference.headers.encoding
    assert quick.extensions == reference.extensions
    assert quick.content == reference.content
    assert isinstance(quick.stream, httpx2.ByteStream)
    assert b"".join(quick.stream) == reference.content


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "QUERY", "HEAD"]),
    client_headers=st.dictionaries(_names, _values, max_size=3),
    call_headers=st.none() | st.dictionaries(_names | st.just("Content-Type"), _values, max_size=3),
    body=st.sampled_from(["none", "content", "form"]),
    content=st.binary(max_size=40),
    form=_forms,
)
def test_the_quick_path_builds_what_httpx2_builds(
    method: str,
    client_headers: dict[str, str],
    call_headers: dict[str, str] | None,
    body: str,
    content: bytes,
    form: dict[str, str],
) -> None:
    client = _client(client_headers)
    kwargs: dict[str, object] = {
        "content": content if body == "content" else None,
        "data": form if body == "form" else None,
        "headers": call_headers,
    }
    quick = quick_request(client, method, URL, request_id=RID, **kwargs)  # type: ignore[arg-type]
    assert quick is not None
    _same(quick, _reference(client, method, **kwargs))  # type: ignore[arg-type]


def test_a_call_header_overrides_every_copy_of_the_client_header() -> None:
    client = _client({"Accept": "*/*", "User-Agent": "ours"})
    headers = {"accept": "application/json"}
    quick = quick_request(
        client, "GET", URL, content=None, data=None, headers=headers, request_id=RID
    )
    assert quick is not None
    assert quick.headers.get_list("accept") == ["application/json"]
    _same(quick, _reference(client, "GET", content=None, data=None, headers=headers))


@pytest.mark.parametrize(
    ("content", "data", "headers"),
    [
        ("text", None, None),  # a str body: httpx2 encodes it
        (None, {"n": 1}, None),  # a non-str form value
        (None, {"a": ["x", "y"]}, None),  # a repeated form field
        (b"x", {"a": "b"}, None),  # both
        (None, None, {"Host": "elsewhere"}),
        (None, None, {"Content-Length": "3"}),
        (None, None, {"X-Request-Id": "theirs"}),
        (None, None, {"Cookie": "a=b"}),
        (None, None, {"X-Name": "café"}),  # not ASCII: httpx2 decides
    ],
)
def test_inputs_it_does_not_handle_are_left_to_httpx2(
    content: object, data: object, headers: dict[str, str] | None
) -> None:
    client = _client({})
    assert (
        quick_request(
            client, "POST", URL, content=content, data=data, headers=headers, request_id=RID
        )
        is None
    )


def test_client_cookies_or_params_are_left_to_httpx2() -> None:
    with_cookies = _client({})
    with_cookies.cookies.set("session", "abc", domain="api.example.com")
    with_params = httpx2.AsyncClient(base_url=BASE, params={"a": "1"})
    for client in (with_cookies, with_params):
        assert (
            quick_request(client, "GET", URL, content=None, data=None, headers=None, request_id=RID)
            is None
        )
    client = _client({})
    assert (
        quick_request(client, "GET", URL, content=None, data=None, headers=None, request_id="réq")
        is None
    )


def test_the_kept_check_of_client_headers_follows_changes() -> None:
    client = httpx2.AsyncClient(base_url=BASE)
    defaults = ClientHeaders()

    def quick() -> httpx2.Request | None:
        return quick_request(
            client,
            "GET",
            URL,
            content=None,
            data=None,
            headers=None,
            request_id=RID,
            defaults=defaults,
        )

    first = quick()
    assert first is not None
    assert "x-tenant-tag" not in first.headers
    client.headers["X-Tenant-Tag"] = "blue"
    second = quick()
    assert second is not None
    assert second.headers["x-tenant-tag"] == "blue"
    client.headers["X-Tenant-Tag"] = "vert-\u00e9"  # not ASCII any more: httpx2 decides
    assert quick() is None
