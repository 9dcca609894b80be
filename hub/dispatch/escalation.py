"""Escalation chains: e-mail, then SMS if nobody opened it within a day, then a call.

Every step is a delivery of its own, planned at fan-out: the first one the person can be
reached on goes at once, each later one waits (deferred, reason `escalation`) for the sum
of the delays before it. A step that fails brings the next one forward to now. When a later
step comes due it goes unless an earlier step satisfied the later step's `unless`:
`reached` (delivered, or accepted by a channel that reports nothing more: an SMTP server's
250, a webhook's 2xx), `opened` (a person opened it or followed one of its links) or
`clicked` (a person followed one of its links). Opens and clicks a machine made (privacy
proxies, link scanners) do not count. Nothing wakes a step early: it is checked when due.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session, aliased

from hub.db.models import Delivery, Engagement, Notification
from hub.dispatch.claim import Claimed
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EngagementKind,
    EscalationUnless,
)

# Channels whose acceptance is the last word (no delivery receipt will follow).
FINAL_ON_ACCEPT = frozenset({Channel.EMAIL, Channel.WEBHOOK})
# What each condition is satisfied by, beyond `reached`: a click shows the message was read
# even when its images (and so the open pixel) were never loaded.
SATISFIED_BY: dict[EscalationUnless, frozenset[EngagementKind]] = {
    EscalationUnless.OPENED: frozenset({EngagementKind.OPEN, EngagementKind.CLICK}),
    EscalationUnless.CLICKED: frozenset({EngagementKind.CLICK}),
}


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


@dataclass(frozen=True, slots=True)
class Earlier:
    """An earlier step's delivery for the same person, as it stood when a later one came due.

    `opened`/`clicked`: the first time a person (not a machine) did so, if they did."""

    delivery_id: int
    step: int
    channel: Channel
    state: DeliveryState
    changed_at: dt.datetime  # when it reached its state (the receipt, the 250)
    opened: dt.datetime | None = None
    clicked: dt.datetime | None = None

    def satisfied(self, unless: EscalationUnless) -> Stop | None:
        """Whether this delivery did what `unless` asks; how and when if so."""
        if unless is EscalationUnless.REACHED:
            if self.state is DeliveryState.DELIVERED:
                return self._stop("delivered", self.changed_at)
            if self.state is DeliveryState.SENT and self.channel in FINAL_ON_ACCEPT:
                return self._stop("accepted", self.changed_at)
            return None
        if self.clicked is not None:
            return self._stop("clicked", self.clicked)
        if unless is EscalationUnless.OPENED and self.opened is not None:
            return self._stop("opened", self.opened)
        return None

    def _stop(self, what: str, at: dt.datetime) -> Stop:
        return Stop(self.delivery_id, self.step, self.channel, what, at)

    def as_changes(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "step": self.step,
            "channel": self.channel.value,
            "state": self.state.value,
        }


@dataclass(frozen=True, slots=True)
class Stop:
    """The earlier delivery that satisfied a step's condition: `what` it did, and when."""

    delivery_id: int
    step: int
    channel: Channel
    what: str  # delivered | accepted | opened | clicked
    at: dt.datetime

    def as_changes(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery_id,
            "step": self.step,
            "channel": self.channel.value,
            "what": self.what,
            "at": self.at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Check:
    """Why a later step went or stopped when it came due; its timeline event keeps it as
    `changes.escalation` (`as_changes`)."""

    step: int
    unless: EscalationUnless
    after_seconds: float  # the step's own wait after the one before it
    earlier: tuple[Earlier, ...]
    stopped_by: Stop | None = None
    waited_seconds: float = 0.0  # since the first earlier step went: what "within" means

    def as_changes(self) -> dict[str, Any]:
        changes: dict[str, Any] = {
            "step": self.step,
            "unless": self.unless.value,
            "after_seconds": self.after_seconds,
            "waited_seconds": self.waited_seconds,
            "earlier": [e.as_changes() for e in self.earlier],
        }
        if self.stopped_by is not None:
            changes["stopped_by"] = self.stopped_by.as_changes()
        return changes


def unless_of(step: Mapping[str, Any]) -> EscalationUnless:
    """A stored step's condition; steps stored before conditions existed mean `reached`."""
    return EscalationUnless(step.get("unless") or EscalationUnless.REACHED)


def decide(
    step: int, steps: Sequence[Mapping[str, Any]], earlier: Sequence[Earlier]
) -> Check | None:
    """What a step that came due does, given the person's earlier steps of the chain: None
    when there are none (it is the first that could go), else a `Check`, stopped or not."""
    before = tuple(sorted((e for e in earlier if e.step < step), key=lambda e: e.step))
    if not before or step >= len(steps):
        return None
    unless = unless_of(steps[step])
    found = [stop for e in before if (stop := e.satisfied(unless)) is not None]
    return Check(
        step=step,
        unless=unless,
        after_seconds=float(steps[step].get("after_seconds", 0)),
        earlier=before,
        stopped_by=min(found, key=lambda s: s.at) if found else None,
        waited_seconds=sum(
            float(steps[k].get("after_seconds", 0)) for k in range(before[0].step + 1, step + 1)
        ),
    )


@dataclass(frozen=True, slots=True)
class Checked:
    """A batch's deliveries of one notification, each later step with its `Check`, and the
    ids of those an earlier step stopped."""

    deliveries: list[Claimed]
    stopped: set[int]


def check(session: Session, notification_id: int, claimed: Sequence[Claimed]) -> Checked:
    """Decide for each claimed delivery of an escalating notification whether it goes: two
    reads for the batch (the chain's earlier rows, people's opens and clicks of them)."""
    later = [d for d in claimed if d.step > 0]
    if not later:
        return Checked(list(claimed), set())
    steps: list[dict[str, Any]] = (
        session.scalar(select(Notification.escalation).where(Notification.id == notification_id))
        or []
    )
    earlier = _earlier(session, notification_id, later)
    checked: list[Claimed] = []
    stopped: set[int] = set()
    for delivery in claimed:
        verdict = (
            decide(delivery.step, steps, earlier.get(delivery.contact_id, []))
            if delivery.step > 0
            else None
        )
        if verdict is None:
            checked.append(delivery)
            continue
        checked.append(replace(delivery, escalation=verdict))
        if verdict.stopped_by is not None:
            stopped.add(delivery.id)
    return Checked(checked, stopped)


def _earlier(
    session: Session, notification_id: int, later: Sequence[Claimed]
) -> dict[int, list[Earlier]]:
    """Per person, their deliveries of the chain before the latest step claimed for them."""
    highest = max(d.step for d in later)
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.contact_id,
            Delivery.step,
            Delivery.channel,
            Delivery.state,
            Delivery.updated_at,
        ).where(
            Delivery.notification_id == notification_id,
            Delivery.contact_id.in_(sorted({d.contact_id for d in later})),
            Delivery.step < highest,
        )
    ).all()
    firsts = _human_firsts(session, [row.id for row in rows])
    found: dict[int, list[Earlier]] = {}
    for row in rows:
        seen = firsts.get(row.id, {})
        found.setdefault(row.contact_id, []).append(
            Earlier(
                delivery_id=row.id,
                step=row.step,
                channel=row.channel,
                state=row.state,
                changed_at=row.updated_at,
                opened=seen.get(EngagementKind.OPEN),
                clicked=seen.get(EngagementKind.CLICK),
            )
        )
    return found


def _human_firsts(
    session: Session, delivery_ids: Sequence[int]
) -> dict[int, dict[EngagementKind, dt.datetime]]:
    """The first open and the first click a person made of each delivery."""
    if not delivery_ids:
        return {}
    rows = session.execute(
        select(Engagement.delivery_id, Engagement.kind, func.min(Engagement.occurred_at))
        .where(Engagement.delivery_id.in_(delivery_ids), Engagement.machine.is_(False))
        .group_by(Engagement.delivery_id, Engagement.kind)
    ).all()
    firsts: dict[int, dict[EngagementKind, dt.datetime]] = {}
    for delivery_id, kind, first in rows:
        firsts.setdefault(delivery_id, {})[kind] = first
    return firsts


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
