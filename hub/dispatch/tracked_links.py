"""Signed per-delivery click and open URLs: what a tracked message carries instead of its links.

A click token holds the delivery, the link's number in the message, when it was made and the
link itself, under an HMAC: the redirect needs no database read to answer at once, and no one
can point it anywhere the message did not (changing one byte of the target breaks the
signature). An open token holds the delivery and the time. The key is derived from the
secret key for this purpose only; old secret keys still verify, as self-service links do.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass

from hub.domain import EngagementKind

_MAC_BYTES = 12  # 96 bits: forging one is out of reach, and SMS links stay short
_PURPOSE = b"hub/tracking/v1"
_SCHEMES = ("http://", "https://")
MAX_URL = 2048  # longer targets are left as they are


class BadToken(ValueError):
    """Not made by this hub, damaged in transit, or changed."""


@dataclass(frozen=True, slots=True)
class Tracked:
    kind: EngagementKind
    delivery_id: int
    link_index: int  # 0 for an open
    url: str | None  # the target, for a click
    issued_at: dt.datetime


class TrackedLinks:
    def __init__(self, secrets: Sequence[str], *, public_url: str) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed to sign tracked links")
        keys = [hmac.new(s.encode(), _PURPOSE, hashlib.sha256).digest() for s in secrets]
        # Keyed once: a copy per token skips the key set-up (a message signs a dozen links).
        self._macs = [hmac.new(key, digestmod=hashlib.sha256) for key in keys]
        self.base = public_url.rstrip("/")

    @staticmethod
    def trackable(url: str) -> bool:
        return url.startswith(_SCHEMES) and len(url) <= MAX_URL

    def click_url(self, *, delivery_id: int, index: int, url: str, at: dt.datetime) -> str:
        payload = f"{delivery_id:x}.{index:x}.{_minutes(at):x}.{url}".encode()
        return f"{self.base}/t/c/{self._token(payload)}"

    def open_url(self, *, delivery_id: int, at: dt.datetime) -> str:
        payload = f"{delivery_id:x}.{_minutes(at):x}".encode()
        return f"{self.base}/t/o/{self._token(payload)}.gif"

    def read(self, kind: EngagementKind, token: str) -> Tracked:
        """The claims of a token from a `/t/c/` or `/t/o/` URL; raises BadToken."""
        if kind is EngagementKind.OPEN:
            token = token.removesuffix(".gif")
        body, _, mac = token.partition(".")
        try:
            payload = _unb64(body)
            given = _unb64(mac)
        except (binascii.Error, ValueError):
            raise BadToken("not a tracked-link token") from None
        if not any(hmac.compare_digest(given, _mac(keyed, payload)) for keyed in self._macs):
            raise BadToken("signature does not match")
        try:
            return _claims(kind, payload.decode())
        except (UnicodeDecodeError, ValueError):
            raise BadToken("signed, but not a token of this kind") from None

    def _token(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(_mac(self._macs[0], payload))}"


def _mac(keyed: hmac.HMAC, payload: bytes) -> bytes:
    mac = keyed.copy()
    mac.update(payload)
    return mac.digest()[:_MAC_BYTES]


def _claims(kind: EngagementKind, text: str) -> Tracked:
    if kind is EngagementKind.OPEN:
        delivery, minutes = text.split(".")
        return Tracked(kind, int(delivery, 16), 0, None, _instant(int(minutes, 16)))
    delivery, index, minutes, url = text.split(".", 3)
    if not url.startswith(_SCHEMES) or int(index, 16) < 1:
        raise ValueError("not a click")
    return Tracked(kind, int(delivery, 16), int(index, 16), url, _instant(int(minutes, 16)))


def _minutes(at: dt.datetime) -> int:
    return int(at.timestamp()) // 60


def _instant(minutes: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(minutes * 60, dt.UTC)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    if not text:
        raise ValueError("empty")
    # validate: a byte outside the alphabet is damage, not something to skip over
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
