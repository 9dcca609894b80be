"""Webhook target URLs: the one reading of a URL that saving it and sending to it both use.

A host is read the way browsers and WHATWG's URL standard read it: UTS 46 mapping by `idna`
(case, full-width forms, the full stops U+3002, U+FF0E and U+FF61, ignorable characters), then
each label to its A-label, which `idna` checks (IDNA 2008 code points, bidi, joiners, canonical
Punycode); a host that ends in a number must be an IPv4 address, and is written canonically.
What cannot be read is refused, so the host a check looks at is the host a connection goes to.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

import idna

from hub.channels import netguard

MAX_HOST = 253
MAX_LABEL = 63
_ASCII_LABEL = re.compile(r"[a-z0-9_\-]+")
# WHATWG's "ends in a number": such a host is an IPv4 address or nothing at all.
_NUMERIC = re.compile(r"[0-9]+|0x[0-9a-f]*")
# Controls anywhere. A space, or a "\" (which browsers read as "/" and other parsers do not),
# is refused in the host by the label check; in the path httpx sends it percent-encoded.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_AFTER_BRACKET = re.compile(r"(:[0-9]*)?")


class InvalidWebhookUrl(ValueError):
    """A URL no webhook can be sent to; the message says why, to the person who wrote it."""


@dataclass(frozen=True, slots=True)
class Target:
    url: str  # what is stored and what is requested: the host in ASCII, the rest as given
    host: str  # an A-label name, or a canonical IP address (IPv6 without brackets)

    @property
    def forbidden(self) -> bool:
        """Refused before resolution: a non-public literal, or a name for this machine."""
        return netguard.is_forbidden_host(self.host)


def normalize(url: str) -> str:
    """The URL as Hub stores and sends it; see `parse`."""
    return parse(url).url


@lru_cache(maxsize=4096)
def parse(url: str) -> Target:
    """Read a webhook URL: http(s), a host, no credentials, a usable port.

    Cached: the channel reads each endpoint's URL on every send.

    Raises:
        InvalidWebhookUrl: anything else, with what is wrong.
    """
    if _CONTROL.search(url):
        raise InvalidWebhookUrl("must not contain control characters")
    if not url.isascii():
        try:
            url.encode()
        except UnicodeEncodeError:
            raise InvalidWebhookUrl("must be valid Unicode (no lone surrogates)") from None
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # unbalanced brackets, or brackets around a non-address
        raise InvalidWebhookUrl(f"is not a URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in {"http", "https"}:
        raise InvalidWebhookUrl("must be an http or https URL")
    netloc = parts.netloc
    if "@" in netloc:
        raise InvalidWebhookUrl("must not carry credentials; sign requests instead")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise InvalidWebhookUrl("has a port that is not a number from 1 to 65535")
    if netloc.startswith("["):
        if not _AFTER_BRACKET.fullmatch(netloc.partition("]")[2]):
            raise InvalidWebhookUrl("has something between its IPv6 address and its port")
        host = _ipv6(parts.hostname or "")
        netloc = f"[{host}]"
    else:
        host = normalize_host(netloc.rpartition(":")[0] if ":" in netloc else netloc)
        netloc = host
    if port is not None:
        netloc = f"{netloc}:{port}"
    return Target(urlunsplit((scheme, netloc, parts.path, parts.query, parts.fragment)), host)


def normalize_host(host: str) -> str:
    """A URL's (unbracketed) host as connect() should get it: lower-case A-labels, or the
    dotted quad of an IPv4 address in any spelling (127.1, 0x7f000001, full-width digits).

    Raises:
        InvalidWebhookUrl: no host, percent-encoding, or a name IDNA refuses.
    """
    if not host:
        raise InvalidWebhookUrl("must name a host")
    if "%" in host:
        raise InvalidWebhookUrl("must not percent-encode its host")
    try:
        mapped = idna.uts46_remap(host, std3_rules=False, transitional=False)
    except idna.IDNAError as exc:
        raise InvalidWebhookUrl(f"has a host that is not a valid domain name: {exc}") from None
    labels = mapped.split(".")
    trailing_dot = len(labels) > 1 and labels[-1] == ""
    if trailing_dot:
        labels.pop()
    ascii_labels = [_a_label(label) for label in labels]
    name = ".".join(ascii_labels)
    if len(name) > MAX_HOST:
        raise InvalidWebhookUrl(f"has a host longer than {MAX_HOST} characters")
    if _NUMERIC.fullmatch(ascii_labels[-1]):
        address = netguard.literal_ip(name)
        if not isinstance(address, ipaddress.IPv4Address):
            raise InvalidWebhookUrl("has a host that ends in a number but is not an IPv4 address")
        return str(address)
    return name + "." if trailing_dot else name


def _a_label(label: str) -> str:
    if not label:
        raise InvalidWebhookUrl("has an empty label in its host (a leading dot, or two dots)")
    if label.isascii():
        if not _ASCII_LABEL.fullmatch(label):
            bad = next(c for c in label if not _ASCII_LABEL.fullmatch(c))
            raise InvalidWebhookUrl(f"has a host with a character not allowed in names: {bad!r}")
        if label.startswith("xn--"):
            try:
                idna.ulabel(label)  # canonical Punycode of a valid U-label, or refused
            except idna.IDNAError as exc:
                raise InvalidWebhookUrl(f"has an invalid Punycode label {label!r}: {exc}") from None
    else:
        try:
            label = idna.alabel(label).decode("ascii")
        except idna.IDNAError as exc:
            raise InvalidWebhookUrl(f"has a host that is not a valid domain name: {exc}") from None
    if len(label) > MAX_LABEL:
        raise InvalidWebhookUrl(f"has a host label longer than {MAX_LABEL} characters")
    return label


def _ipv6(host: str) -> str:
    if "%" in host:
        raise InvalidWebhookUrl("must not name an IPv6 zone ('%' in the address)")
    try:
        return ipaddress.IPv6Address(host).compressed
    except ValueError:
        raise InvalidWebhookUrl("has brackets around what is not an IPv6 address") from None
