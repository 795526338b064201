"""The SSRF guard: every blocked address form is refused, public ones and the allowlist pass."""

import asyncio
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.errors import BlockedDestination, ConnectionFailed
from connectors.http.ssrf import SsrfGuard, SsrfPolicy, blocked_reason, parse_ipv4_literal


def run(coro):
    return asyncio.run(coro)


class Resolver:
    """A fake DNS: fixed answers per host, counting lookups."""

    def __init__(self, answers=None):
        self.answers = answers or {}
        self.calls: list[str] = []

    async def __call__(self, host):
        self.calls.append(host)
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]


def vet(url, policy=None, answers=None):
    return run(SsrfGuard(policy, resolver=Resolver(answers)).vet(url))


BLOCKED_URLS = [
    "http://127.0.0.1/",
    "http://127.0.0.53:8080/x",
    "http://localhost/",
    "http://api.localhost/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",
    "http://169.254.169.254/latest/meta-data/",
    "http://169.254.170.2/",
    "http://100.100.100.200/",
    "http://[fd00:ec2::254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://metadata/",
    "http://0.0.0.0/",
    "http://255.255.255.255/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://192.0.2.10/",
    "http://198.18.0.1/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",
    "http://[fd12:3456::1]/",
    "http://[ff02::1]/",
    "http://[fec0::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[::ffff:7f00:1]/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::127.0.0.1]/",
    "http://[::8.8.8.8]/",
    "http://[64:ff9b::7f00:1]/",
    "http://[64:ff9b::10.0.0.1]/",
    "http://[64:ff9b:1::1]/",
    "http://[2002:7f00:1::]/",
    "http://[2002:c0a8:101::1]/",
    "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "http://[2001:db8::1]/",
    "http://2130706433/",
    "http://0177.0.0.1/",
    "http://0x7f.1/",
    "http://0x7f000001/",
    "http://127.1/",
    "http://017700000001/",
    "http://0/",
    "http://127.0.0.1./",
    "http://0xa9.0xfe.0xa9.0xfe/",
    "http://3232235777/",
]


@pytest.mark.parametrize("url", BLOCKED_URLS)
def test_blocked_address_forms_are_refused(url):
    with pytest.raises(BlockedDestination) as info:
        vet(url)
    assert info.value.hint is not None
    assert "allow" in info.value.hint


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/",
        "file:///etc/passwd",
        "gopher://example.com/",
        "http://user:pass@example.com/",
        "http://user@example.com/",
        "http:///nohost",
        "http://exa mple.com/",
        "http://example.com\\@127.0.0.1/",
        "http://example.com:99999/",
        "http://[fe80::1%25eth0]/",
        "http://999.1.1.1/",
        "http://08.1.1.1/",
        "http://example.123/",
    ],
)
def test_bad_urls_are_refused_before_any_lookup(url):
    resolver = Resolver()
    with pytest.raises(BlockedDestination):
        run(SsrfGuard(resolver=resolver).vet(url))
    assert resolver.calls == []


def test_a_public_name_resolves_once_and_is_pinned_to_its_addresses():
    resolver = Resolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})
    target = run(SsrfGuard(resolver=resolver).vet("https://Hooks.Example.com./path?q=1"))
    assert resolver.calls == ["hooks.example.com"]
    assert target.host == "hooks.example.com"
    assert target.port == 443
    assert [str(a) for a in target.addresses] == ["93.184.216.34", "2606:2800:220:1::1"]
    assert target.origin == "https://hooks.example.com:443"


def test_a_name_resolving_to_any_private_address_is_refused():
    with pytest.raises(BlockedDestination, match=r"resolves to 10\.0\.0\.7"):
        vet("http://evil.example/", answers={"evil.example": ["93.184.216.34", "10.0.0.7"]})


def test_the_error_names_the_rule_and_how_to_allow_it_but_not_the_path_or_query():
    with pytest.raises(BlockedDestination) as info:
        vet("http://127.0.0.1:9/hook?token=abc")
    text = str(info.value)
    assert "loopback" in text
    assert "127.0.0.1/32" in text
    assert "token=abc" not in text


def test_public_literals_pass():
    assert str(vet("http://8.8.8.8/").addresses[0]) == "8.8.8.8"
    assert str(vet("http://[2606:4700:4700::1111]/").addresses[0]) == "2606:4700:4700::1111"
    assert str(vet("http://[::ffff:8.8.8.8]/").addresses[0]) == "::ffff:808:808"
    assert vet("http://[64:ff9b::808:808]/").port == 80


def test_the_allowlist_admits_cidrs_and_hosts():
    policy = SsrfPolicy.allowing(["127.0.0.1/32"], ["internal.svc"])
    assert vet("http://127.0.0.1:8080/", policy).port == 8080
    assert vet("http://[::ffff:127.0.0.1]/", policy).port == 80
    with pytest.raises(BlockedDestination):
        vet("http://127.0.0.2/", policy)
    target = vet("http://internal.svc/", policy, {"internal.svc": ["10.1.2.3"]})
    assert str(target.addresses[0]) == "10.1.2.3"


def test_https_only_policy_refuses_http():
    with pytest.raises(BlockedDestination, match="only https"):
        vet("http://8.8.8.8/", SsrfPolicy(allow_http=False))


def test_an_invalid_allowlist_entry_is_refused():
    with pytest.raises(BlockedDestination, match="invalid allowlist"):
        SsrfPolicy.allowing(["not-a-cidr"])


def test_unresolvable_names_are_a_connection_failure():
    with pytest.raises(ConnectionFailed):
        vet("http://nowhere.example/")


def test_inet_aton_spellings():
    assert str(parse_ipv4_literal("2130706433")) == "127.0.0.1"
    assert str(parse_ipv4_literal("0177.0.0.1")) == "127.0.0.1"
    assert str(parse_ipv4_literal("0x7f.1")) == "127.0.0.1"
    assert str(parse_ipv4_literal("127.1")) == "127.0.0.1"
    assert str(parse_ipv4_literal("10.1.256")) == "10.1.1.0"
    assert parse_ipv4_literal("example.com") is None
    with pytest.raises(ValueError, match="not a valid one"):
        parse_ipv4_literal("1.2.3.4.5")


PRIVATE_NETS = [
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "169.254.0.0/16",
    "100.64.0.0/10",
    "0.0.0.0/8",
    "224.0.0.0/4",
    "240.0.0.0/4",
]


def _spellings(ip: ipaddress.IPv4Address, style: int) -> str:
    n = int(ip)
    octets = ip.packed
    if style == 0:
        return str(ip)
    if style == 1:
        return str(n)
    if style == 2:
        return hex(n)
    if style == 3:
        return ".".join("0" + format(o, "o") for o in octets)
    if style == 4:
        return ".".join(hex(o) for o in octets)
    if style == 5:
        return f"{octets[0]}.{int.from_bytes(octets[1:], 'big')}"
    if style == 6:
        return f"{octets[0]}.{octets[1]}.{int.from_bytes(octets[2:], 'big')}"
    if style == 7:
        return f"[::ffff:{ip}]"
    if style == 8:
        return f"[64:ff9b::{ip}]"
    if style == 9:
        return f"[2002:{octets[0]:02x}{octets[1]:02x}:{octets[2]:02x}{octets[3]:02x}::1]"
    return f"[::{ip}]"


@settings(max_examples=300, deadline=None)
@given(
    net=st.sampled_from(PRIVATE_NETS),
    offset=st.integers(min_value=0, max_value=2**32),
    style=st.integers(min_value=0, max_value=10),
)
def test_random_private_addresses_in_any_spelling_are_refused(net, offset, style):
    network = ipaddress.ip_network(net)
    ip = network[offset % network.num_addresses]
    with pytest.raises(BlockedDestination):
        vet(f"http://{_spellings(ip, style)}/")


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=0, max_value=2**128 - 1))
def test_blocked_reason_agrees_with_is_global_for_plain_ipv6(n):
    ip = ipaddress.IPv6Address(n)
    reason = blocked_reason(ip)
    if not ip.is_global:
        assert reason is not None


@pytest.mark.parametrize("url", ["https://./", "http://.:80", "http://..:80/x"])
def test_a_host_of_only_dots_is_no_host(url: str) -> None:
    with pytest.raises(BlockedDestination, match="no host"):
        SsrfGuard().check_url(url)
