"""Signed, expiring, purpose-scoped links to one contact's self-service pages.

A token names one contact (and, for unsubscribe, one topic) and one purpose; the purpose is
the signature's salt, so an unsubscribe token cannot open the preferences page or the reverse.
Verification accepts every configured secret (newest first), so links sent before a key
rotation keep working until they expire (RELIABILITY 13).
"""

from __future__ import annotations

import datetime as dt
import enum
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer


class Purpose(enum.StrEnum):
    PREFERENCES = "preferences"
    UNSUBSCRIBE = "unsubscribe"
    CONFIRM = "confirm"  # double opt-in: the subscription counts once this link is used


class InvalidToken(ValueError):
    """Tampered, swapped, made with an unknown key, or for another purpose."""


class ExpiredToken(InvalidToken):
    pass


@dataclass(frozen=True, slots=True)
class Claims:
    contact_id: int
    topic: str | None
    issued_at: dt.datetime | None = None


class _ClockedSigner(TimestampSigner):
    """itsdangerous' timestamp signer with the clock given (tests sign links in the past)."""

    def __init__(self, *args: Any, clock: Callable[[], float] = time.time, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = clock

    def get_timestamp(self) -> int:
        return int(self._clock())


class LinkSigner:
    def __init__(
        self,
        secrets: Sequence[str],
        *,
        max_age: dt.timedelta,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not secrets:
            raise ValueError("at least one secret is needed to sign links")
        # itsdangerous signs with the last key and verifies with any of them.
        keys = list(reversed(secrets))
        self._serializers = {
            purpose: URLSafeTimedSerializer(
                keys,
                salt=f"hub/{purpose.value}",
                signer=_ClockedSigner,
                signer_kwargs={"clock": clock},
            )
            for purpose in Purpose
        }
        self._max_age = int(max_age.total_seconds())

    def sign(self, purpose: Purpose, contact_id: int, topic: str | None = None) -> str:
        token: str = self._serializers[purpose].dumps([contact_id, topic])
        return token

    def verify(self, purpose: Purpose, token: str) -> Claims:
        """Raises ExpiredToken or InvalidToken; never says whether the contact exists."""
        try:
            payload, issued = self._serializers[purpose].loads(
                token, max_age=self._max_age, return_timestamp=True
            )
        except SignatureExpired as exc:
            raise ExpiredToken("this link has expired") from exc
        except BadSignature as exc:
            raise InvalidToken("this link is not valid") from exc
        match payload:
            case [int() as contact_id, str() | None as topic]:
                return Claims(contact_id=contact_id, topic=topic, issued_at=issued)
        raise InvalidToken("this link is not valid")
