"""Provider status callbacks: move a delivery forward only, whatever order they arrive in.

The provider's reader in `hub.channels` has already put each callback in Hub's words (a
`StatusUpdate`: sent, delivered or failed, with the provider's own word kept for the record).
Callbacks come late, twice and out of order (RELIABILITY 11); a delivery's state only ever
moves to a higher rank, so a late "sent" never overwrites "delivered" and a duplicate changes
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels.base import StatusUpdate
from hub.db.base import utcnow
from hub.db.models import Delivery, EarlyCallback
from hub.dispatch import escalation
from hub.domain import ActorKind, Channel, DeliveryState, EventType
from hub.services import notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.hashing import AddressHasher

log = logging.getLogger("hub.inbound")
RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENDING: 0,
    DeliveryState.UNKNOWN: 0,  # a callback settles what a timeout left open
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.FAILED: 2,
    DeliveryState.BOUNCED: 2,
}
# The channels whose providers report each message's fate by calling back.
REPORTED = (Channel.SMS, Channel.VOICE)


@dataclass(frozen=True, slots=True)
class Applied:
    found: bool
    changed: bool
    state: DeliveryState | None = None
    parked: bool = False  # no delivery has the id yet: kept until one does (`apply_early`)


def apply(
    session: Session, update: StatusUpdate, *, hasher: AddressHasher, park: bool = True
) -> Applied:
    """Apply one status update; the caller commits.

    An unknown provider id is not an error: the send may not be recorded yet (the update is
    parked until it is), or the person was erased, or another system shares the account.
    """
    # Several rows share a provider id when one digest carried their items.
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(Delivery.provider_id == update.provider_id, Delivery.channel.in_(REPORTED))
            .order_by(Delivery.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if not deliveries:
        if park:
            session.add(_parked(update))
            return Applied(found=False, changed=False, parked=True)
        return Applied(found=False, changed=False)
    new = update.state
    moved = [d for d in deliveries if RANK.get(new, 0) > RANK.get(d.state, 0)]
    if not moved:
        return Applied(found=True, changed=False, state=deliveries[0].state)
    for delivery in moved:
        _advance(session, delivery, update)
    if new is DeliveryState.FAILED:
        escalation.advance_after(session, [d.id for d in moved], now=utcnow())
    address = deliveries[0].address
    if update.suppress is not None and address:
        suppressions.add(
            session,
            channel=deliveries[0].channel,
            address=address,
            reason=update.suppress,
            actor=_actor(update),
            hasher=hasher,
        )
    return Applied(found=True, changed=True, state=new)


def _actor(update: StatusUpdate) -> Actor:
    return Actor(kind=ActorKind.INBOUND, name=update.provider, source=f"{update.provider}.status")


def _advance(session: Session, delivery: Delivery, update: StatusUpdate) -> None:
    now = utcnow()
    new = update.state
    delivery.state = new
    delivery.updated_at = now
    delivery.ambiguous = delivery.ambiguous and new is DeliveryState.SENT
    reason = update.reason
    if new is DeliveryState.FAILED:
        delivery.error_code = update.error_code
        delivery.error = update.error
    delivery.reason = reason
    kind = {
        DeliveryState.DELIVERED: EventType.DELIVERY_DELIVERED,
        DeliveryState.FAILED: EventType.DELIVERY_FAILED,
    }.get(new, EventType.DELIVERY_SENT)
    timeline.record(
        session,
        contact_id=delivery.contact_id,
        type=kind,
        actor=_actor(update),
        at=now,
        topic_key=notifications.topic_key(session, delivery.notification_id),
        channel=delivery.channel,
        reason=reason,
        changes={
            "delivery_id": delivery.id,
            "notification_id": delivery.notification_id,
            "provider_id": update.provider_id,
            "status": update.status,
            "error_code": update.error_code,
            "answered_by": update.answered_by,
        },
    )


def _parked(update: StatusUpdate) -> EarlyCallback:
    return EarlyCallback(
        provider_id=update.provider_id[:255],
        provider=update.provider[:32],
        state=update.state,
        status=update.status[:32],
        reason=update.reason,
        error_code=(update.error_code or "")[:32] or None,
        error=(update.error or "")[:255] or None,
        answered_by=(update.answered_by or "")[:32] or None,
        suppress=update.suppress,
        received_at=utcnow(),
    )


def _unparked(row: EarlyCallback) -> StatusUpdate | None:
    if row.provider is None or row.state is None:
        return None  # a status the provider's reader did not know, parked before 0014
    return StatusUpdate(
        provider=row.provider,
        provider_id=row.provider_id,
        state=row.state,
        status=row.status,
        reason=row.reason,
        error_code=row.error_code,
        error=row.error,
        answered_by=row.answered_by,
        suppress=row.suppress,
    )


def apply_early(session: Session, sids: Collection[str], *, hasher: AddressHasher) -> int:
    """Apply the parked updates of provider ids just recorded, in arrival order; how many."""
    if not sids:
        return 0
    early = list(
        session.scalars(
            select(EarlyCallback)
            .where(EarlyCallback.provider_id.in_(list(sids)))
            .order_by(EarlyCallback.id)
        )
    )
    for row in early:
        update = _unparked(row)
        if update is not None:
            apply(session, update, hasher=hasher, park=False)
        session.delete(row)
    if early:
        log.info("applied %d status callbacks that came before their send was recorded", len(early))
    return len(early)
