"""The SSRF address policy: which hosts and addresses an outgoing request may reach."""

from __future__ import annotations

import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are IPv4
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")  # RFC 8215: local-use translation
_LOCAL_NAMES = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "localhost6"}
)


class ForbiddenAddressError(ValueError):
    """A destination is, or resolves to, an address the policy refuses."""

    def __init__(self, host: str, address: str) -> None:
        detail = host if host == address else f"{host} ({address})"
        super().__init__(f"{detail} is not a public address; webhooks may not reach it")
        self.host = host
        self.address = address


def is_forbidden_address(ip: IPAddress | str) -> bool:
    """Whether `ip` is anything but a globally routable unicast address.

    `is_global` alone is not enough on Python 3.11: it calls multicast, site-local, 6to4 and
    NAT64 forms of loopback "global", so those are checked by hand.
    """
    address = ipaddress.ip_address(ip) if isinstance(ip, str) else ip
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            # The kernel or a translator connects to the IPv4 address inside.
            return is_forbidden_address(embedded)
        if address in _NAT64_LOCAL or address.is_site_local:
            return True
    return (
        not address.is_global
        or address.is_multicast
        or address.is_private
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
    )


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:  # ::ffff:a.b.c.d
        return address.ipv4_mapped
    if address.sixtofour is not None:  # 2002:AABB:CCDD::/48
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def literal_ip(host: str) -> IPAddress | None:
    """The address `host` spells, in any form a resolver accepts, or None for a name.

    Reads `[::1]`, `127.0.0.1.`, and the IPv4 spellings `ipaddress` refuses but `connect()`
    takes: 2130706433, 0x7f000001, 127.1, 0x7f.1, 0177.0.0.1.
    """
    host = host.strip().strip("[]").rstrip(".").lower()  # "127.0.0.1." is 127.0.0.1
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton ignores anything after a space, so only hand it strings of these characters.
    if host and host[0].isdigit() and all(c in "0123456789abcdefx." for c in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def is_forbidden_host(host: str) -> bool:
    """Whether a URL's host is refused before resolution: a forbidden address literal in any
    spelling, or a name that always means this machine (localhost, *.localhost)."""
    address = literal_ip(host)
    if address is not None:
        return is_forbidden_address(address)
    name = host.strip().strip("[]").rstrip(".").lower()
    return name in _LOCAL_NAMES or name.endswith(".localhost")
