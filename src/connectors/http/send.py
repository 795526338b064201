"""Send one built request through an auth flow and a transport: ``AsyncClient.send``, minus what
a connector client never uses.

``httpx2.AsyncClient.send`` wraps every request in layers for redirects, event hooks, request
logging, a timing stream wrapper and cookie extraction: ~15 µs a call, a tenth of an operation's
own cost. A :class:`~connectors.http.client.ConnectorHttpClient` that does not follow redirects
needs none of them except cookies, so it sends through :func:`send` instead:

- the ``httpx2.Auth`` flow is driven exactly as httpx2 drives it: the flow itself reads the
  request or response body when it needs one (``httpx2.Auth.async_auth_flow`` honours
  ``requires_request_body``/``requires_response_body``; a flow of its own decides for itself),
  intermediate responses are read and kept in the final response's ``history``, the flow is
  closed in the end;
- a transport error carries the request (as httpx2's ``request_context`` sees to);
- ``Set-Cookie`` answers still reach the client's cookie jar (checked by header name first);
- the response is read unless ``stream`` is true, and closed if anything fails on the way.

Clients that follow redirects, use a proxy or HTTP/2, or carry credentials in the URL keep
``AsyncClient.send`` (:func:`direct_send_applies`).
"""

from __future__ import annotations

import httpx2

from connectors.auth.static import RequestEditor
from connectors.http.headers import lines_of

__all__ = ["direct_send_applies", "read_in_memory", "send"]


def direct_send_applies(request: httpx2.Request) -> bool:
    """False when httpx2 would derive auth from the URL (``https://user:pass@host``)."""
    return not request.url.userinfo


async def send(
    transport: httpx2.AsyncBaseTransport,
    request: httpx2.Request,
    *,
    auth: httpx2.Auth | None,
    cookies: httpx2.Cookies,
    stream: bool,
    edit: RequestEditor | None = None,
) -> httpx2.Response:
    """The response to ``request`` after ``auth``'s flow, read unless ``stream``.

    ``edit`` is what running ``auth``'s flow amounts to, when it only edits the request
    (:func:`connectors.auth.static.request_editor`): applied instead of driving the flow.
    """
    if edit is not None:
        edit(request)
        response = await _send_single(transport, request, cookies)
    elif auth is None:
        response = await _send_single(transport, request, cookies)
    else:
        response = await _send_with_auth(transport, request, auth, cookies)
    if not stream:
        try:
            if isinstance(response.stream, httpx2.ByteStream):
                # A body already in memory (the lean transport's small bodies, mock answers).
                read_in_memory(response)
            else:
                await response.aread()
        except BaseException:
            await response.aclose()
            raise
    return response


def read_in_memory(response: httpx2.Response) -> None:
    """``response.read()`` for an unread body held in a ``ByteStream``.

    Without a content coding, the decoder chain ``read()`` runs (two context managers, two
    chunkers, three generators: ~12 µs, as much as the rest of the response) would hand the
    bytes through unchanged, so they are adopted directly and the response left in the state
    ``read()`` leaves it in: content set, stream consumed and closed, bytes counted. That state
    is httpx2's (the version is pinned in uv.lock); ``tests/http/test_send.py`` holds the
    shortcut to be indistinguishable from ``read()``. A coded body goes through ``read()``.
    """
    for _, name, _ in lines_of(response.headers):
        if name == b"content-encoding":
            response.read()
            return
    body = b"".join(response.stream)  # type: ignore[arg-type]  # a ByteStream is sync too
    response._content = body
    response._num_bytes_downloaded = len(body)
    response.is_stream_consumed = True
    response.is_closed = True


async def _send_with_auth(
    transport: httpx2.AsyncBaseTransport,
    request: httpx2.Request,
    auth: httpx2.Auth,
    cookies: httpx2.Cookies,
) -> httpx2.Response:
    # No body is read here: httpx2.Auth.async_auth_flow reads what requires_request_body and
    # requires_response_body ask for, and a flow that overrides it (a streamed, replayable
    # upload; a check that reads only a 401's body) must not have bodies read behind its back.
    flow = auth.async_auth_flow(request)
    history: list[httpx2.Response] = []
    try:
        request = await flow.__anext__()
        while True:
            response = await _send_single(transport, request, cookies)
            try:
                if history:
                    response.history = list(history)
                try:
                    next_request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                await response.aread()  # an intermediate answer (a 401 before a refresh, say)
                history.append(response)
                request = next_request
            except BaseException:
                await response.aclose()
                raise
    finally:
        await flow.aclose()


async def _send_single(
    transport: httpx2.AsyncBaseTransport, request: httpx2.Request, cookies: httpx2.Cookies
) -> httpx2.Response:
    if not isinstance(request.stream, httpx2.AsyncByteStream):
        raise RuntimeError("Attempted to send a sync request with an async client.")
    try:
        response = await transport.handle_async_request(request)
    except httpx2.RequestError as exc:
        exc.request = request  # what httpx2's request_context does (free unless raised)
        raise
    response.request = request
    for _, name, _ in lines_of(response.headers):
        if name == b"set-cookie":
            cookies.extract_cookies(response)
            break
    return response
