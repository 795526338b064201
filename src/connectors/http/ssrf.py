"""The SSRF guard: a user-supplied URL may only reach public addresses, unless allowed explicitly.

Every webhook target and declarative-connector URL passes through :meth:`SsrfGuard.vet` before a
connection is made. Vetting parses the URL strictly, resolves the host **once** (through an
injectable resolver) and checks **every** address; the resulting :class:`VettedTarget` is what
:mod:`connectors.http.pinned` connects to, so a DNS answer that changes between the check and the
connection cannot redirect it.

Refused (:class:`~connectors.errors.BlockedDestination`, naming the rule and how to allow it):

* schemes other than ``http``/``https``; user names or passwords in the URL; malformed hosts;
* loopback, private (RFC 1918, ULA ``fc00::/7``), shared CGNAT ``100.64/10``, link-local
  (``169.254/16``, ``fe80::/10``), site-local, multicast, unspecified, broadcast and reserved
  addresses, and anything else that is not globally routable (documentation, benchmarking);
* cloud metadata addresses (``169.254.169.254``, ``fd00:ec2::254``, ``100.100.100.200``,
  ``169.254.170.2``) and names (``metadata.google.internal``, ``localhost``...);
* IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64 ``64:ff9b::/96``,
  6to4 ``2002::/16``, Teredo) when the embedded address is refused;
* the legacy IPv4 spellings a resolver would accept (``2130706433``, ``0177.0.0.1``, ``0x7f.1``,
  ``127.1``) are read exactly as ``inet_aton`` reads them, then checked like any address.

:class:`SsrfPolicy` carries the explicit allowlist (CIDRs and host names) of one definition; tests
that deliver to a loopback receiver allow ``127.0.0.1/32`` this way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

from connectors.errors import BlockedDestination, ConnectionFailed

__all__ = [
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "IPAddress",
    "Resolver",
    "SsrfGuard",
    "SsrfPolicy",
    "VettedTarget",
    "blocked_reason",
    "parse_ipv4_literal",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

Resolver = Callable[[str], Awaitable[Sequence[str]]]
"""``async resolve(host) -> [ip, ...]``: the one DNS lookup of a vetting."""

#: Cloud instance-metadata endpoints (AWS/GCP/Azure/OpenStack, AWS IPv6, Alibaba, ECS tasks).
METADATA_ADDRESSES: Final[frozenset[IPAddress]] = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),
        ipaddress.ip_address("169.254.170.2"),
        ipaddress.ip_address("fd00:ec2::254"),
        ipaddress.ip_address("100.100.100.200"),
    }
)
#: Names that lead to metadata services or this machine whatever DNS says.
METADATA_HOSTS: Final[frozenset[str]] = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data"}
)

_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")
_SIX_TO_FOUR: Final = ipaddress.ip_network("2002::/16")
_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_IPV4_COMPAT: Final = ipaddress.ip_network("::/96")
_BROADCAST: Final = ipaddress.ip_address("255.255.255.255")
_HOST_RE: Final = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*\.?$")
_NUMERIC_PART: Final = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


def parse_ipv4_literal(host: str) -> ipaddress.IPv4Address | None:
    """Read ``host`` the way ``inet_aton`` (and so most resolvers) would, or ``None``.

    One to four dot-separated parts, each decimal, octal (leading ``0``) or hex (``0x``); the last
    part fills the remaining bytes (``127.1`` is ``127.0.0.1``, ``2130706433`` is too). A host
    whose parts all look numeric but do not form an address raises ``ValueError``: it is
    ambiguous, and ambiguity is refused.
    """
    text = host[:-1] if host.endswith(".") else host
    parts = text.split(".")
    if not parts or len(parts) > 4 or not all(_NUMERIC_PART.match(p) for p in parts):
        if parts and _NUMERIC_PART.match(parts[-1]) and len(parts) > 1:
            # WHATWG: a host whose last label is numeric is an IPv4 address or invalid.
            raise ValueError(f"{host!r} looks like an IPv4 address but is not a valid one")
        return None
    values: list[int] = []
    for part in parts:
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if not all(c in "01234567" for c in part):
                raise ValueError(f"{host!r} has an invalid octal part {part!r}")
            values.append(int(part, 8))
        else:
            values.append(int(part, 10))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        raise ValueError(f"{host!r} has a part out of range for an IPv4 address")
    number = last
    for index, value in enumerate(head):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def _v4_rule(ip: ipaddress.IPv4Address) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip == _BROADCAST:
        return "the broadcast address"
    if ip.is_link_local:
        return "a link-local address"
    if ip in _CGNAT:
        return "a shared (CGNAT 100.64.0.0/10) address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


def blocked_reason(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be reached (a short phrase), or ``None`` when it is public."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _v4_rule(ip)
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    mapped = ip.ipv4_mapped
    if mapped is not None:
        inner = _v4_rule(mapped)
        return None if inner is None else f"an IPv4-mapped IPv6 form of {inner}"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip in _IPV4_COMPAT:
        inner = _v4_rule(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return f"an IPv4-compatible IPv6 form of {inner or 'an IPv4 address'} (deprecated)"
    if ip in _NAT64:
        inner = _v4_rule(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        return None if inner is None else f"a NAT64 form of {inner}"
    if ip in _NAT64_LOCAL:
        return "a local-use NAT64 address"
    if ip in _SIX_TO_FOUR:
        inner = _v4_rule(ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF))
        return None if inner is None else f"a 6to4 form of {inner}"
    teredo = ip.teredo
    if teredo is not None:
        for part in teredo:
            inner = _v4_rule(part)
            if inner is not None:
                return f"a Teredo form of {inner}"
        return None
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_site_local:
        return "a site-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private (unique local) address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a globally routable address"
    return None


async def system_resolver(host: str) -> Sequence[str]:
    """Resolve ``host`` with the event loop's ``getaddrinfo`` (TCP addresses, v4 and v6)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    seen: dict[str, None] = {}
    for *_, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]).split("%", 1)[0], None)
    return list(seen)


@dataclass(frozen=True, slots=True)
class SsrfPolicy:
    """What one definition allows beyond public addresses.

    ``allow_nets``: CIDRs (``"127.0.0.1/32"``, ``"10.20.0.0/16"``) whose addresses are reachable.
    ``allow_hosts``: host names whose every resolved address is reachable (internal targets).
    ``allow_http``: whether plain ``http`` is accepted (``https`` always is).
    """

    allow_nets: tuple[IPNetwork, ...] = ()
    allow_hosts: frozenset[str] = frozenset()
    allow_http: bool = True

    @classmethod
    def allowing(
        cls, nets: Iterable[str] = (), hosts: Iterable[str] = (), *, allow_http: bool = True
    ) -> SsrfPolicy:
        """Build a policy from text (CIDRs and host names), validating each entry."""
        parsed: list[IPNetwork] = []
        for net in nets:
            try:
                parsed.append(ipaddress.ip_network(net.strip(), strict=False))
            except ValueError as exc:
                raise BlockedDestination(
                    f"invalid allowlist entry {net!r}: {exc}",
                    hint="write CIDRs like '127.0.0.1/32' or '10.0.0.0/8'",
                ) from exc
        return cls(
            allow_nets=tuple(parsed),
            allow_hosts=frozenset(_normal_host(h) for h in hosts),
            allow_http=allow_http,
        )

    def allows_address(self, ip: IPAddress) -> bool:
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(
            c in net for c in candidates for net in self.allow_nets if c.version == net.version
        )


@dataclass(frozen=True, slots=True)
class VettedTarget:
    """A URL that passed the guard: where to connect, and only there."""

    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...] = field(default=())

    @property
    def origin(self) -> str:
        """``scheme://host:port``: safe to show (no path, query or credentials)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _normal_host(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host[:-1] if host.endswith(".") else host


_ALLOW_HINT = (
    "if this target is intended, allow it explicitly in the definition's SSRF allowlist "
    "(allow_nets: ['{net}'] or allow_hosts: ['{host}'])"
)


class SsrfGuard:
    """Vets URLs against an :class:`SsrfPolicy` with one DNS resolution per vetting."""

    __slots__ = ("policy", "resolver")

    def __init__(
        self, policy: SsrfPolicy | None = None, *, resolver: Resolver | None = None
    ) -> None:
        self.policy = policy or SsrfPolicy()
        self.resolver: Resolver = resolver or system_resolver

    def check_url(self, url: str) -> tuple[str, str, int]:
        """Parse ``url`` strictly (no I/O): ``(scheme, host, port)`` or ``BlockedDestination``."""
        if not isinstance(url, str) or any(ord(c) < 0x21 or c in "\\\x7f" for c in url):
            raise BlockedDestination(
                "the URL contains whitespace, control characters or backslashes",
                hint="send a plain absolute http(s) URL",
            )
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise BlockedDestination(
                f"the URL is malformed: {exc}", hint="send a plain absolute http(s) URL"
            ) from exc
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or (scheme == "http" and not self.policy.allow_http):
            allowed = "https" if not self.policy.allow_http else "http and https"
            raise BlockedDestination(
                f"scheme {scheme or '(none)'!r} is not allowed; only {allowed}",
                hint="use an https:// URL",
            )
        if parts.username is not None or parts.password is not None or "@" in parts.netloc:
            raise BlockedDestination(
                "URLs with credentials (user:password@host) are refused",
                hint="put credentials in the endpoint's secrets, not in the URL",
            )
        raw_host = parts.hostname
        if not raw_host:
            raise BlockedDestination("the URL has no host", hint="send an absolute http(s) URL")
        host = _normal_host(raw_host)
        if not host.strip("."):  # "http://./", "http://../": only empty labels, no host
            raise BlockedDestination("the URL has no host", hint="send an absolute http(s) URL")
        if "%" in host:
            raise BlockedDestination(
                "IPv6 zone identifiers are refused", hint="use a global IPv6 address"
            )
        return scheme, host, port if port is not None else (443 if scheme == "https" else 80)

    async def vet(self, url: str) -> VettedTarget:
        """Check ``url``, resolve its host once and check every address."""
        scheme, host, port = self.check_url(url)
        origin = VettedTarget(scheme, host, port).origin
        literal = self._literal(host, origin)
        if literal is not None:
            self._check_address(literal, host, origin)
            return VettedTarget(scheme, host, port, (literal,))
        if not _HOST_RE.match(host):
            raise BlockedDestination(
                f"refusing {origin}: {host!r} is not a valid host name",
                hint="use a DNS name or an IP address",
            )
        host_allowed = host in self.policy.allow_hosts
        if not host_allowed and (
            host in METADATA_HOSTS or host == "localhost" or host.endswith(".localhost")
        ):
            raise BlockedDestination(
                f"refusing {origin}: {host!r} names this machine or a metadata service",
                hint=_ALLOW_HINT.format(net="<cidr>", host=host),
            )
        try:
            answers = await self.resolver(host)
        except OSError as exc:
            raise ConnectionFailed(
                f"cannot resolve {host!r}: {exc.strerror or exc}",
                hint="check the endpoint's host name",
            ) from exc
        addresses: list[IPAddress] = []
        for answer in answers:
            try:
                ip = ipaddress.ip_address(answer.split("%", 1)[0])
            except ValueError as exc:
                raise BlockedDestination(
                    f"refusing {origin}: the resolver returned a non-address {answer!r}"
                ) from exc
            if not host_allowed:
                self._check_address(ip, host, origin)
            addresses.append(ip)
        if not addresses:
            raise ConnectionFailed(f"{host!r} resolved to no address", hint="check the host name")
        return VettedTarget(scheme, host, port, tuple(addresses))

    def _literal(self, host: str, origin: str) -> IPAddress | None:
        if ":" in host:
            try:
                return ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise BlockedDestination(f"refusing {origin}: malformed IPv6 address") from exc
        try:
            return parse_ipv4_literal(host)
        except ValueError as exc:
            raise BlockedDestination(
                f"refusing {origin}: {exc}", hint="write IPv4 addresses as four decimal numbers"
            ) from exc

    def _check_address(self, ip: IPAddress, host: str, origin: str) -> None:
        if self.policy.allows_address(ip):
            return
        reason = blocked_reason(ip)
        if reason is None:
            return
        net = f"{ip}/{32 if ip.version == 4 else 128}"
        shown = "" if host == str(ip) else f" ({host} resolves to {ip})"
        raise BlockedDestination(
            f"refusing {origin}{shown}: {ip} is {reason}",
            hint=_ALLOW_HINT.format(net=net, host=host),
        )
