"""The SSRF corpus: every spelling of a non-public destination is refused, public ones are not."""

from __future__ import annotations

import ipaddress

import pytest

from hub.channels.netguard import is_forbidden_address, is_forbidden_host, literal_ip
from hub.fields import is_private_host

FORBIDDEN_HOSTS = [
    "127.0.0.1",
    "127.1",  # inet_aton fills the missing octets
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0x7f.1",
    "0177.0.0.1",  # octal
    "127.0.0.1.",  # a trailing dot is the same address
    "10.0.0.1",
    "10.255.255.255",
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CGNAT
    "0.0.0.0",
    "0",
    "255.255.255.255",
    "224.0.0.1",  # multicast
    "224.0.1.1",  # globally scoped multicast, which Python 3.11 calls "global"
    "240.0.0.1",  # reserved
    "198.18.0.1",  # benchmarking
    "192.0.2.1",  # documentation
    "::1",
    "[::1]",
    "::",
    "[::]",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",  # site-local, which Python 3.11 calls "global"
    "ff02::1",
    "ff0e::1",  # global-scope multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "[::ffff:7f00:1]",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "2002:7f00:1::",  # 6to4 of 127.0.0.1, which Python 3.11 calls "global"
    "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::1",  # local-use NAT64
    "2001:db8::1",  # documentation
    "2001::1",  # Teredo
    "localhost",
    "LOCALHOST",
    "localhost.",
    "localhost.localdomain",
    "ip6-localhost",
    "api.localhost",
]

ALLOWED_HOSTS = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "134744072",  # 8.8.8.8 in decimal: an odd spelling is not by itself a refusal
    "2606:4700::1111",
    "[2606:4700::1111]",
    "::ffff:8.8.8.8",  # mapped public addresses reach the public address
    "64:ff9b::808:808",
    "2002:808:808::1",
    "example.com",  # names are vetted per resolved address at connect time
    "hooks.example.org",
    "localhost.example.com",
    "127.0.0.1.nip.io",
]


@pytest.mark.parametrize("host", FORBIDDEN_HOSTS)
def test_forbidden_hosts_are_refused_before_resolution(host: str) -> None:
    assert is_forbidden_host(host)
    assert is_private_host(host)  # the save-time check is the same policy


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_public_hosts_pass(host: str) -> None:
    assert not is_forbidden_host(host)
    assert not is_private_host(host)


@pytest.mark.parametrize(
    ("spelling", "address"),
    [
        ("127.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("10.1", "10.0.0.1"),
        ("[::1]", "::1"),
        ("8.8.8.8.", "8.8.8.8"),
    ],
)
def test_literal_ip_reads_what_connect_would(spelling: str, address: str) -> None:
    assert literal_ip(spelling) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["example.com", "cafe", "beef.de", "127.0.0.1 evil.com", "1.2.3.4.5", "", "0x"]
)
def test_names_and_junk_are_not_addresses(host: str) -> None:
    # "127.0.0.1 evil.com" would pass inet_aton, which stops at the space.
    assert literal_ip(host) is None


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True),
        ("10.0.0.1", True),
        ("::ffff:192.168.0.1", True),
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
    ],
)
def test_is_forbidden_address_takes_objects_and_strings(address: str, forbidden: bool) -> None:
    assert is_forbidden_address(address) is forbidden
    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden
