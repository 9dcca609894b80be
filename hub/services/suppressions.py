"""The suppression list: add, look up, lift; each change lands on the owners' timelines.

Rows are keyed by channel and a keyed hash of the address, so a lookup also finds an erased
person's address (whose plain text is gone) and erasure keeps working across re-imports.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, Suppression
from hub.domain import ADDRESS_FIELD, PERSONS_REFUSALS, Channel, EventType, SuppressionReason
from hub.services import timeline
from hub.services.actor import Actor
from hub.services.errors import Conflict, NotFound
from hub.services.hashing import AddressHasher


def owners(session: Session, channel: Channel, address: str) -> list[int]:
    column = getattr(Contact, ADDRESS_FIELD[channel])
    return list(session.scalars(select(Contact.id).where(column == address)))


def add(
    session: Session,
    *,
    channel: Channel,
    address: str,
    reason: SuppressionReason,
    actor: Actor,
    hasher: AddressHasher,
    note: str | None = None,
    expires_at: dt.datetime | None = None,
) -> tuple[Suppression, bool]:
    """Suppress the address (or return the row that already does); the caller commits.

    A row that runs out sooner than this one would (an expired one, or a week's soft-bounce
    suspension met by a hard bounce or a complaint) takes the new reason and expiry, so a
    lasting refusal is never lost behind a passing one."""
    digest = hasher(channel, address)
    existing = session.scalar(
        select(Suppression)
        .where(Suppression.channel == channel, Suppression.address_hash == digest)
        .with_for_update()
    )
    now = utcnow()
    if existing is not None:
        if not _outlasts(existing.expires_at, expires_at, now):
            return existing, False
        existing.reason, existing.expires_at, existing.note = reason, expires_at, note
        existing.source, existing.actor, existing.created_at = actor.source, actor.name, now
        session.flush()
        _record(session, existing, EventType.SUPPRESSION_ADDED, actor, address)
        return existing, True
    row = Suppression(
        channel=channel,
        address=address,
        address_hash=digest,
        reason=reason,
        source=actor.source,
        actor=actor.name,
        note=note,
        created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    _record(session, row, EventType.SUPPRESSION_ADDED, actor, address)
    return row, True


def _outlasts(held: dt.datetime | None, wanted: dt.datetime | None, now: dt.datetime) -> bool:
    """Whether a suppression until `wanted` (None: for good) outlasts one held until `held`."""
    if held is None:
        return False
    if held <= now or wanted is None:
        return True
    return wanted > held


def remove(
    session: Session,
    suppression_id: int,
    *,
    actor: Actor,
    cool_down: dt.timedelta = dt.timedelta(0),
) -> Suppression:
    """Lift a suppression; the removal is an event with its actor.

    A person's own refusal (STOP, a complaint, an opt-out) lifted by anyone but the person
    leaves a `cool_down` suppression until `cool_down` after the refusal: staff or a service
    cannot undo "no" at once; the person (START) can.
    """
    row = session.get(Suppression, suppression_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no suppression {suppression_id}")
    if row.reason is SuppressionReason.ERASURE:
        raise Conflict(
            "an erasure suppression is kept for good: it is what keeps an erased person "
            "uncontactable for marketing if their address comes back"
        )
    if (
        row.reason is SuppressionReason.COOL_DOWN
        and not actor.is_the_person
        and (row.expires_at is None or row.expires_at > utcnow())
    ):
        ends = f"{row.expires_at:%Y-%m-%d %H:%M} UTC" if row.expires_at else "never"
        raise Conflict(
            f"a cool-down after the person's refusal ends by itself ({ends}), or when the "
            "person asks again (START, the preferences page)"
        )
    if row.address is not None:
        _record(session, row, EventType.SUPPRESSION_REMOVED, actor, row.address)
    session.delete(row)
    until = row.created_at + cool_down
    if (
        row.reason in PERSONS_REFUSALS
        and not actor.is_the_person
        and row.address is not None
        and until > utcnow()
    ):
        session.flush()  # the row is gone before its successor takes its (unique) hash
        cooling = Suppression(
            channel=row.channel,
            address=row.address,
            address_hash=row.address_hash,
            reason=SuppressionReason.COOL_DOWN,
            source=actor.source,
            actor=actor.name,
            note=f"cool-down after {row.reason.value} of {row.created_at:%Y-%m-%d}",
            created_at=utcnow(),
            expires_at=until,
        )
        session.add(cooling)
        session.flush()
        _record(session, cooling, EventType.SUPPRESSION_ADDED, actor, row.address)
    return row


def find(
    session: Session,
    *,
    hasher: AddressHasher,
    channel: Channel | None,
    address: str | None,
    reason: SuppressionReason | None,
    after_id: int | None,
    limit: int,
) -> list[Suppression]:
    query = select(Suppression)
    if channel is not None:
        query = query.where(Suppression.channel == channel)
        if address is not None:
            query = query.where(Suppression.address_hash == hasher(channel, address))
    if reason is not None:
        query = query.where(Suppression.reason == reason)
    if after_id is not None:
        query = query.where(Suppression.id > after_id)
    return list(session.scalars(query.order_by(Suppression.id).limit(limit)))


def _record(
    session: Session, row: Suppression, kind: EventType, actor: Actor, address: str
) -> None:
    changes = {"suppression_id": row.id, "note": row.note}
    timeline.record_many(
        session,
        [
            timeline.event_row(
                contact_id=contact_id,
                type=kind,
                actor=actor,
                channel=row.channel,
                reason=row.reason,
                changes=changes,
            )
            for contact_id in owners(session, row.channel, address)
        ],
    )
