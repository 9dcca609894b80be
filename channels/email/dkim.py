"""DKIM: the e-mail channel's signing key, checked at start-up, and each outgoing message signed."""

from __future__ import annotations

import re
from pathlib import Path

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

# What the signature covers, when present. RFC 8058 3 requires List-Unsubscribe-Post to be
# covered (OpenDKIM's default list leaves it out); a header named in h= but absent would
# forbid adding it later, so only those in the message are named.
SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"list-id",
    b"feedback-id",
)
_HEADER_NAME = re.compile(rb"^([!-9;-~]+)[ \t]*:", re.MULTILINE)
_VARIABLES = ("HUB_DKIM_DOMAIN", "HUB_DKIM_SELECTOR", "HUB_DKIM_KEY_FILE")


def read_key(domain: str | None, selector: str | None, key_file: Path | None) -> bytes | None:
    """The PEM private key when all three settings are given; None when none is.

    Raises:
        ValueError: only some are set, or the key file is missing, unreadable or not an RSA
            key in PEM. The message names the variable and never quotes the key.
    """
    given = [bool(domain), bool(selector), key_file is not None and str(key_file) != ""]
    if not any(given):
        return None
    if not all(given):
        missing = ", ".join(name for name, ok in zip(_VARIABLES, given, strict=True) if not ok)
        raise ValueError(f"DKIM signing needs all of {', '.join(_VARIABLES)}; missing: {missing}")
    assert key_file is not None
    try:
        key = Path(key_file).read_bytes()
    except OSError as exc:
        raise ValueError(f"HUB_DKIM_KEY_FILE: cannot read {key_file}: {exc.strerror}") from None
    try:
        parse_pem_private_key(key)
    except (UnparsableKeyError, ValueError, IndexError):
        raise ValueError(
            f"HUB_DKIM_KEY_FILE: {key_file} is not an RSA private key in PEM"
        ) from None
    return key


class DkimSigner:
    """Signs final message bytes (CRLF line ends) with rsa-sha256, relaxed/relaxed."""

    __slots__ = ("_domain", "_key", "_selector")

    def __init__(self, *, domain: str, selector: str, key: bytes) -> None:
        self._domain = domain.encode("ascii")
        self._selector = selector.encode("ascii")
        self._key = key  # never logged: __repr__ below leaves it out

    def __repr__(self) -> str:
        return f"DkimSigner(domain={self._domain!r}, selector={self._selector!r})"

    def sign(self, message: bytes) -> bytes:
        """The message with its DKIM-Signature header prepended."""
        head = message.split(b"\r\n\r\n", 1)[0]
        present = {name.lower() for name in _HEADER_NAME.findall(head)}
        signature: bytes = dkim.sign(
            message,
            self._selector,
            self._domain,
            self._key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=[name for name in SIGNED_HEADERS if name in present],
        )
        return signature + message
