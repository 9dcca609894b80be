"""What people tell Hub through their phone: texts (STOP, START, HELP, anything) and keys
pressed during a call, as the provider's reader in `hub.channels` hands them over.

STOP (and its synonyms, in any case, with surrounding spaces) suppresses SMS to that number
before the next send; START restores it, lifting only what a STOP or the carrier set, never
a hard bounce, an erasure or a suppression staff added (RELIABILITY 10).
"""

from __future__ import annotations

import enum

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels.base import InboundText, Keypress
from hub.db.base import utcnow
from hub.db.models import InboundReceipt, Suppression
from hub.db.upsert import insert_ignoring_duplicates
from hub.domain import ActorKind, Channel, EventType, SuppressionReason
from hub.services import suppressions, timeline
from hub.services.actor import Actor
from hub.services.hashing import AddressHasher

STOP_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
START_WORDS = frozenset({"START", "UNSTOP", "YES"})
HELP_WORDS = frozenset({"HELP", "INFO"})
# The person's own START also ends the cool-down that followed a STOP lifted by staff.
LIFTED_BY_START = frozenset(
    {SuppressionReason.SMS_STOP, SuppressionReason.CARRIER_OPT_OUT, SuppressionReason.COOL_DOWN}
)
MAX_KEPT = 1600  # the longest concatenated SMS


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


def keyword(body: str) -> Keyword:
    word = body.strip().upper()
    if word in STOP_WORDS:
        return Keyword.STOP
    if word in START_WORDS:
        return Keyword.START
    if word in HELP_WORDS:
        return Keyword.HELP
    return Keyword.NONE


def first_time(session: Session, provider_id: str | None) -> bool:
    """Whether this provider message id is new; remembers it (in the caller's transaction).

    A provider signs a request, not a moment: a captured "START" replayed after a later "STOP"
    would otherwise lift it. Requests without an id cannot be told apart and are acted on.
    """
    if not provider_id:
        return True
    inserted = session.scalar(
        insert_ignoring_duplicates(session, InboundReceipt)
        .values(provider_id=provider_id[:64], received_at=utcnow())
        .returning(InboundReceipt.provider_id)
    )
    return inserted is not None


def receive(session: Session, text: InboundText, *, hasher: AddressHasher) -> Keyword:
    """Act on one inbound text; the caller commits and answers (HELP gets the help text).

    A replay of a text already received (the same provider id) is answered alike and changes
    nothing.
    """
    sender, body, sid = text.sender, text.body, text.provider_id
    actor = Actor(kind=ActorKind.INBOUND, name=sender, source=f"{text.provider}.{Channel.SMS}")
    word = keyword(body)
    if not first_time(session, sid):
        return word
    if word is Keyword.STOP:
        suppressions.add(
            session,
            channel=Channel.SMS,
            address=sender,
            reason=SuppressionReason.SMS_STOP,
            actor=actor,
            hasher=hasher,
            note=f"replied {body.strip()[:20]!r}",
        )
    elif word is Keyword.START:
        row = session.scalar(
            select(Suppression).where(
                Suppression.channel == Channel.SMS,
                Suppression.address_hash == hasher(Channel.SMS, sender),
            )
        )
        if row is not None and row.reason in LIFTED_BY_START:
            suppressions.remove(session, row.id, actor=actor)
    if word is not Keyword.HELP:
        timeline.record_many(
            session,
            [
                timeline.event_row(
                    contact_id=contact_id,
                    type=EventType.INBOUND_MESSAGE,
                    actor=actor,
                    channel=Channel.SMS,
                    reason=word.value if word is not Keyword.NONE else None,
                    changes={"body": body[:MAX_KEPT], "provider_id": sid},
                )
                for contact_id in suppressions.owners(session, Channel.SMS, sender)
            ],
        )
    return word


OPT_OUT_DIGIT = "9"


def keypress(session: Session, pressed: Keypress, *, hasher: AddressHasher) -> bool:
    """A key pressed during a call; 9 suppresses voice to that number. Whether it did."""
    if pressed.digits.strip() != OPT_OUT_DIGIT:
        return False
    callee, sid = pressed.callee, pressed.provider_id
    source = f"{pressed.provider}.{Channel.VOICE}"
    suppressions.add(
        session,
        channel=Channel.VOICE,
        address=callee,
        reason=SuppressionReason.VOICE_OPT_OUT,
        actor=Actor(kind=ActorKind.INBOUND, name=callee, source=source),
        hasher=hasher,
        note=f"pressed 9 during call {sid}" if sid else "pressed 9 during a call",
    )
    return True
