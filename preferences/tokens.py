"""Signed, expiring, purpose-scoped links to one contact's self-service pages.

A token names one contact (and, for unsubscribe, one topic) and one purpose; the purpose is
the signature's salt, so an unsubscribe token cannot open the preferences page or the reverse.
The contact is named twice: by its row id, for the look-up, and by its random link key, which
the page compares; a row id can come back after an erasure (SQLite), a link key never does.
Verification accepts every configured secret (newest first), so links sent before a key
rotation keep working until they expire (RELIABILITY 13).
"""

from __future__ import annotations

import datetime as dt
import enum
import hmac
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
    link_key: str | None = None  # None in links issued before contacts had one

    def names(self, contact_link_key: str, contact_created_at: dt.datetime) -> bool:
        """Whether the link was issued to the contact found under its id.

        A link without a key predates them: it names the contact only if it was issued after
        the contact was created (to the second, as its stamp), and such links expire with
        the link lifetime.
        """
        if self.link_key is not None:
            return hmac.compare_digest(self.link_key, contact_link_key)
        if self.issued_at is None:
            return False
        return self.issued_at >= contact_created_at.replace(microsecond=0)


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

    def sign(
        self, purpose: Purpose, contact_id: int, topic: str | None = None, *, link_key: str
    ) -> str:
        token: str = self._serializers[purpose].dumps([contact_id, topic, link_key])
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
            case [int() as contact_id, str() | None as topic, str() as link_key]:
                return Claims(contact_id, topic, issued_at=issued, link_key=link_key)
            case [int() as contact_id, str() | None as topic]:
                return Claims(contact_id=contact_id, topic=topic, issued_at=issued)
        raise InvalidToken("this link is not valid")
