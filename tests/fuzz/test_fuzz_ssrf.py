"""Fuzzing the SSRF URL checker (``connectors.http.ssrf``).

Properties: :meth:`SsrfGuard.check_url` and :meth:`SsrfGuard.vet` raise nothing but
:class:`~connectors.errors.BlockedDestination` (or
:class:`~connectors.errors.ConnectionFailed` when the name does not resolve); every address a
vetted target carries is public (no loopback, private, link-local, metadata... address gets
through, however the URL spells it or whatever the resolver answers).
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Sequence

from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import BlockedDestination, ConnectionFailed
from connectors.http.ssrf import SsrfGuard, blocked_reason

from ._support import fuzz

_SCHEMES = st.sampled_from(["http://", "https://", "ftp://", "HTTP://", "//", "", "file://"])
_HOSTS = st.one_of(
    st.sampled_from(
        ["example.com", "127.0.0.1", "127.1", "0177.0.0.1", "0x7f.1", "2130706433", "[::1]",
         "[::ffff:127.0.0.1]", "[64:ff9b::a9fe:a9fe]", "[2002:7f00:1::]", "169.254.169.254",
         "metadata.google.internal", "localhost", "a.localhost", "10.0.0.1", "[fe80::1%25eth0]",
         "93.184.216.34", "user:pw@example.com", "example.com.", "EXAMPLE.com", "0", "0x", "1.2.3",
         "[2001:db8::1]", "100.64.0.1", "255.255.255.255", "[::]", "xn--nxasmq6b.com", "ä.com"]
    ),
    st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
    st.text(max_size=20),
)  # fmt: skip
_TAILS = st.sampled_from(["", "/", "/hook", ":8080/x", ":99999", ":-1", "?q=1", "#f", "\\x", " "])
_URLS = st.one_of(
    st.tuples(_SCHEMES, _HOSTS, _TAILS).map("".join),
    st.text(max_size=60),
)
_ANSWERS = st.lists(
    st.one_of(st.ip_addresses().map(str), st.sampled_from(["not-an-ip", "fe80::1%eth0", ""])),
    max_size=3,
)


def _resolver(answers: Sequence[str]):  # type: ignore[no-untyped-def]
    async def resolve(host: str) -> Sequence[str]:
        if host.endswith(".invalid"):
            raise OSError(8, "Name or service not known")
        return answers

    return resolve


@fuzz
@given(url=_URLS)
def test_check_url_accepts_or_raises_blocked_destination(url: str) -> None:
    try:
        scheme, host, port = SsrfGuard().check_url(url)
    except BlockedDestination:
        return
    assert scheme in ("http", "https")
    assert 0 <= port <= 65535
    assert host
    assert "@" not in host


@fuzz
@given(url=_URLS, answers=_ANSWERS)
def test_a_vetted_target_only_ever_carries_public_addresses(url: str, answers: list[str]) -> None:
    guard = SsrfGuard(resolver=_resolver(answers))
    try:
        target = asyncio.run(guard.vet(url))
    except (BlockedDestination, ConnectionFailed):
        return
    assert target.addresses
    for ip in target.addresses:
        assert blocked_reason(ip) is None, (url, ip)
        assert not ip.is_loopback
        assert not ip.is_private
        assert not ip.is_link_local


@fuzz
@given(ip=st.ip_addresses())
def test_every_literal_address_is_refused_exactly_when_it_is_not_public(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    host = f"[{ip}]" if ip.version == 6 else str(ip)
    guard = SsrfGuard(resolver=_resolver([]))
    try:
        asyncio.run(guard.vet(f"https://{host}/"))
    except BlockedDestination:
        assert blocked_reason(ip) is not None
        return
    assert blocked_reason(ip) is None
