"""The key a delivery's e-mail and webhook carry, and how a report that quotes it is checked.

`hub-{notification}-{delivery}-{tag}` is the Message-ID's left part, the VERP address's tag and
the webhook-id; it is the same on every resend of the delivery. The ids find the delivery; the
tag makes the key this installation's and this recipient's alone: six characters of the
installation's random token (kept in its database), then ten of a keyed hash of the ids and the
address the message went to. Ids restart at 1 in every new database, so without the tag a
staging instance's bounce for `<hub-1-1@...>` matched production's first delivery (RELIABILITY
26); with it, a report changes a delivery only if the address it names hashed to that tag here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Installation

INSTALLATION_CHARS = 6
_HASH_CHARS = 10
# Keys Hub wrote before tags existed (`hub-1-2`) still parse, so a report on mail sent before
# the upgrade can say so; such a report matches no delivery (staff see it among the unmatched).
KEY = re.compile(r"hub-(\d{1,19})-(\d{1,19})(?:-([a-z2-7]{16}))?(?![a-z0-9-])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FoundKey:
    notification_id: int
    delivery_id: int
    tag: str | None  # None in keys from before tags


@dataclass(frozen=True, slots=True)
class MessageKeys:
    installation: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: str, installation: str) -> MessageKeys:
        derived = hmac.new(secret.encode(), b"hub/message-keys", hashlib.sha256).digest()
        return cls(installation=installation, secret=derived)

    def key(self, notification_id: int, delivery_id: int, address: str) -> str:
        tag = self.tag(notification_id, delivery_id, address)
        return f"hub-{notification_id}-{delivery_id}-{tag}"

    def tag(self, notification_id: int, delivery_id: int, address: str) -> str:
        message = f"{self.installation}:{notification_id}:{delivery_id}:{_plain(address)}"
        digest = hmac.new(self.secret, message.encode(), hashlib.sha256).digest()
        return self.installation + base64.b32encode(digest).decode().lower()[:_HASH_CHARS]

    def sent_to(self, found: FoundKey, address: str) -> bool:
        """Whether the message that carried `found` was this installation's, sent to `address`."""
        if found.tag is None:
            return False
        expected = self.tag(found.notification_id, found.delivery_id, address)
        return hmac.compare_digest(expected, found.tag.lower())


MAX_ID = 2**63 - 1  # the largest id a BIGINT (and SQLite) holds


def find(text: str) -> FoundKey | None:
    """The first key of Hub's in a Message-ID or an address (`bounces+hub-1-2-tag@...`)."""
    found = KEY.search(text)
    if found is None:
        return None
    notification_id, delivery_id = int(found.group(1)), int(found.group(2))
    if max(notification_id, delivery_id) > MAX_ID:  # no row has it; a database would overflow
        return None
    return FoundKey(notification_id, delivery_id, found.group(3))


def installation_token(session: Session) -> str:
    """This installation's random token, made the first time it is asked for."""
    token: str | None = session.scalar(select(Installation.token))
    if token is not None:
        return token
    made = base64.b32encode(secrets.token_bytes(5)).decode().lower()[:INSTALLATION_CHARS]
    try:
        session.execute(insert(Installation).values(id=1, token=made, created_at=utcnow()))
        session.commit()
    except IntegrityError:  # another process made it first: theirs is the one
        session.rollback()
    kept = session.scalar(select(Installation.token))
    assert kept is not None
    return str(kept)


def _plain(address: str) -> str:
    return address.strip().strip("<>").lower()
