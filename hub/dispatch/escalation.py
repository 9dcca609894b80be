"""Escalation chains: e-mail, then SMS if it is not confirmed within 30 minutes, then a call.

Every step is a delivery of its own, planned at fan-out: the first one the person can be
reached on goes at once, each later one waits (deferred, reason `escalation`) for the sum
of the delays before it. A step that fails brings the next one forward to now. When a later
step comes due it goes only if no earlier step was confirmed: delivered, or accepted by a
channel that reports nothing more (an SMTP server's 250, a webhook's 2xx).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session, aliased

from hub.db.models import Delivery
from hub.domain import Channel, DeferralReason, DeliveryState

# Channels whose acceptance is the last word (no delivery receipt will follow).
FINAL_ON_ACCEPT = frozenset({Channel.EMAIL, Channel.WEBHOOK})


def plan(
    rows: list[dict[str, Any]], steps: Sequence[dict[str, Any]], *, now: dt.datetime
) -> list[dict[str, Any]]:
    """One person's rows (one per channel, as the resolver decided), cut to the chain."""
    by_channel = {row["channel"]: row for row in rows}
    chained: list[dict[str, Any]] = []
    wait: float | None = None  # seconds since the first step that can go
    for index, step in enumerate(steps):
        row = by_channel.get(Channel(step["channel"]))
        if row is None:
            continue  # not one of the channels this person chose
        row["step"] = index
        chained.append(row)
        if row["state"] not in (DeliveryState.QUEUED, DeliveryState.DEFERRED):
            continue  # refused: recorded, and the chain goes on without it
        if wait is None:
            wait = 0.0  # the first step that can go sets off the clock
            continue
        wait += float(step.get("after_seconds", 0))
        due = now + dt.timedelta(seconds=wait)
        if row["state"] is DeliveryState.QUEUED:
            row |= {"state": DeliveryState.DEFERRED, "reason": DeferralReason.ESCALATION}
            row |= {"due_at": due, "not_before": due}
        elif row["due_at"] is not None and row["due_at"] < due:
            row |= {"due_at": due, "not_before": due}
    return chained


def confirmed(session: Session, notification_id: int, contact_ids: Iterable[int]) -> set[int]:
    """The people for whom an earlier step of this notification was confirmed."""
    rows = session.execute(
        select(Delivery.contact_id, Delivery.channel, Delivery.state).where(
            Delivery.notification_id == notification_id,
            Delivery.contact_id.in_(list(contact_ids)),
            Delivery.state.in_((DeliveryState.DELIVERED, DeliveryState.SENT)),
        )
    )
    return {
        contact_id
        for contact_id, channel, state in rows
        if state is DeliveryState.DELIVERED or channel in FINAL_ON_ACCEPT
    }


def advance_after(session: Session, ended: Sequence[int], *, now: dt.datetime) -> None:
    """Bring forward the step after each of these deliveries that will not reach the person
    (failed, bounced, refused at send time), where they belong to a chain: one statement."""
    previous = aliased(Delivery)
    session.execute(
        update(Delivery)
        .where(
            Delivery.state == DeliveryState.DEFERRED,
            Delivery.reason == DeferralReason.ESCALATION,
            exists().where(
                previous.id.in_(list(ended)),
                previous.notification_id == Delivery.notification_id,
                previous.contact_id == Delivery.contact_id,
                previous.step + 1 == Delivery.step,
            ),
        )
        .values(due_at=now, not_before=now)
        .execution_options(synchronize_session=False)
    )
