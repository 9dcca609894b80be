"""Provider status callbacks: move a delivery forward only, whatever order they arrive in.

Twilio reports a message as queued, sent, then delivered or undelivered, and a call as
initiated, ringing, in progress, then completed or busy/no-answer/failed. Callbacks come
late, twice and out of order (RELIABILITY 11); a delivery's state only ever moves to a
higher rank, so a late "sent" never overwrites "delivered" and a duplicate changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Delivery, EarlyCallback
from hub.dispatch import escalation
from hub.domain import (
    ActorKind,
    Channel,
    DeliveryNote,
    DeliveryState,
    EventType,
    FailureReason,
    SuppressionReason,
    delivery_reason,
)
from hub.services import notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.hashing import AddressHasher

log = logging.getLogger("hub.inbound")
TWILIO = Actor(kind=ActorKind.INBOUND, name="twilio", source="twilio.status")
RANK = {
    DeliveryState.QUEUED: 0,
    DeliveryState.SENDING: 0,
    DeliveryState.UNKNOWN: 0,  # a callback settles what a timeout left open
    DeliveryState.SENT: 1,
    DeliveryState.DELIVERED: 2,
    DeliveryState.FAILED: 2,
    DeliveryState.BOUNCED: 2,
}
ACCEPTED = frozenset(
    {"accepted", "scheduled", "queued", "sending", "sent", "initiated", "ringing", "in-progress"}
)
REACHED = frozenset({"delivered", "read", "completed"})
NOT_REACHED = frozenset({"undelivered", "failed", "canceled", "busy", "no-answer"})
CARRIER_OPT_OUT = "21610"


@dataclass(frozen=True, slots=True)
class Callback:
    sid: str
    status: str
    error_code: str | None = None
    answered_by: str | None = None  # machine detection: human, machine_start, fax, ...


@dataclass(frozen=True, slots=True)
class Applied:
    found: bool
    changed: bool
    state: DeliveryState | None = None
    parked: bool = False  # no delivery has the SID yet: kept until one does (`apply_early`)


def target(status: str) -> DeliveryState | None:
    if status in REACHED:
        return DeliveryState.DELIVERED
    if status in NOT_REACHED:
        return DeliveryState.FAILED
    if status in ACCEPTED:
        return DeliveryState.SENT
    return None  # a status we do not know: recorded nowhere, changes nothing


def apply(
    session: Session, callback: Callback, *, hasher: AddressHasher, park: bool = True
) -> Applied:
    """Apply one callback; the caller commits.

    An unknown SID is not an error: the send may not be recorded yet (the callback is parked
    until it is), or the person was erased, or another system shares the account.
    """
    # Several rows share a SID when one digest carried their items.
    deliveries = list(
        session.scalars(
            select(Delivery)
            .where(
                Delivery.provider_id == callback.sid,
                Delivery.channel.in_((Channel.SMS, Channel.VOICE)),
            )
            .order_by(Delivery.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    )
    if not deliveries:
        if park and target(callback.status) is not None:
            session.add(
                EarlyCallback(
                    provider_id=callback.sid[:255],
                    status=callback.status[:32],
                    error_code=(callback.error_code or "")[:32] or None,
                    answered_by=(callback.answered_by or "")[:32] or None,
                    received_at=utcnow(),
                )
            )
            return Applied(found=False, changed=False, parked=True)
        return Applied(found=False, changed=False)
    new = target(callback.status)
    moved = [d for d in deliveries if new is not None and RANK.get(new, 0) > RANK.get(d.state, 0)]
    if new is None or not moved:
        return Applied(found=True, changed=False, state=deliveries[0].state)
    for delivery in moved:
        _advance(session, delivery, new, callback)
    if new is DeliveryState.FAILED:
        escalation.advance_after(session, [d.id for d in moved], now=utcnow())
    address = deliveries[0].address
    if callback.error_code == CARRIER_OPT_OUT and address:
        # The carrier says the person replied STOP: nothing more on this channel, at once.
        suppressions.add(
            session,
            channel=deliveries[0].channel,
            address=address,
            reason=SuppressionReason.CARRIER_OPT_OUT,
            actor=TWILIO,
            hasher=hasher,
        )
    return Applied(found=True, changed=True, state=new)


def _advance(session: Session, delivery: Delivery, new: DeliveryState, callback: Callback) -> None:
    now = utcnow()
    delivery.state = new
    delivery.updated_at = now
    delivery.ambiguous = delivery.ambiguous and new is DeliveryState.SENT
    reason = None
    if new is DeliveryState.FAILED:
        reason = delivery_reason(FailureReason.TWILIO, callback.status)
        delivery.error_code = callback.error_code
        delivery.error = f"Twilio reported {callback.status}"
    elif callback.answered_by and callback.answered_by != "human":
        reason = delivery_reason(DeliveryNote.ANSWERED_BY, callback.answered_by)
    delivery.reason = reason
    kind = {
        DeliveryState.DELIVERED: EventType.DELIVERY_DELIVERED,
        DeliveryState.FAILED: EventType.DELIVERY_FAILED,
    }.get(new, EventType.DELIVERY_SENT)
    timeline.record(
        session,
        contact_id=delivery.contact_id,
        type=kind,
        actor=TWILIO,
        at=now,
        topic_key=notifications.topic_key(session, delivery.notification_id),
        channel=delivery.channel,
        reason=reason,
        changes={
            "delivery_id": delivery.id,
            "notification_id": delivery.notification_id,
            "provider_id": callback.sid,
            "status": callback.status,
            "error_code": callback.error_code,
            "answered_by": callback.answered_by,
        },
    )


def apply_early(session: Session, sids: Collection[str], *, hasher: AddressHasher) -> int:
    """Apply the parked callbacks of SIDs just recorded, in arrival order; how many."""
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
        callback = Callback(row.provider_id, row.status, row.error_code, row.answered_by)
        apply(session, callback, hasher=hasher, park=False)
        session.delete(row)
    if early:
        log.info("applied %d status callbacks that came before their send was recorded", len(early))
    return len(early)
