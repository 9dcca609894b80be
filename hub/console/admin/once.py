"""A secret shown once, on the page right after the form that made it, and kept nowhere.

After a POST the browser is sent to a page by GET (a reload must not create a second key), so
the secret has to cross that redirect. It is not stored on the server, and not put in the
clear anywhere either: the browser gets the secret XOR a random pad, signed and expiring, in a
cookie only for that page; the redirect's URL carries the pad. Either alone says nothing
(access logs and history hold the pad; the cookie jar holds the other half). The page that
shows the secret deletes the cookie, so reloading it, or coming back later, shows nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets

from fastapi import Request, Response
from itsdangerous import BadSignature, TimestampSigner

from hub.console.auth import Sessions

MAX_AGE = 600  # seconds between the POST and the page that shows it


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Once:
    def __init__(self, sessions: Sessions) -> None:
        newest = sessions.runtime.settings.link_secrets()[0]
        self._signer = TimestampSigner(
            hashlib.sha256(("hub/console-once" + newest).encode()).digest(), salt="hub/once"
        )
        self._sessions = sessions

    def _cookie(self, what: str) -> str:
        return f"{'__Host-' if self._sessions.secure else ''}hub_once_{what}"

    def hand_over(self, response: Response, what: str, secret: str) -> str:
        """Put the sealed half on `response` (the redirect); return the pad for its URL.
        `what` names the one page that may open it, e.g. "key-12"."""
        data = secret.encode()
        pad = secrets.token_bytes(len(data))
        sealed = bytes(a ^ b for a, b in zip(data, pad, strict=True))
        value = self._signer.sign(f"{what}.{_b64(sealed)}").decode()
        response.set_cookie(
            self._cookie(what),
            value,
            max_age=MAX_AGE,
            httponly=True,
            samesite="strict",
            secure=self._sessions.secure,
        )
        return _b64(pad)

    def take(self, request: Request, what: str, pad: str) -> str | None:
        """The secret; None when it was shown already, expired, or does not fit the pad.
        The caller deletes the cookie on the page it shows (`forget`)."""
        value = request.cookies.get(self._cookie(what))
        if not value or not pad or len(value) > 1000 or len(pad) > 1000:
            return None
        try:
            signed = self._signer.unsign(value, max_age=MAX_AGE).decode()
            named, _, sealed_text = signed.rpartition(".")
            sealed, key = _unb64(sealed_text), _unb64(pad)
        except (BadSignature, binascii.Error, ValueError):
            return None
        if named != what or len(sealed) != len(key):
            return None
        try:
            return bytes(a ^ b for a, b in zip(sealed, key, strict=True)).decode()
        except UnicodeDecodeError:
            return None

    def forget(self, response: Response, what: str) -> None:
        response.delete_cookie(
            self._cookie(what), path="/", secure=self._sessions.secure, httponly=True
        )
