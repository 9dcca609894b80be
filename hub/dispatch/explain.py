"""Why a message went, waited or was refused: the resolver's rules, step by step.

For a delivery, the rules are evaluated at the moment of its decision with the person's
data as it stands now (so a later STOP shows), beside what was recorded then; a delivery of
an escalation chain also shows the person's whole chain, each step with its wait, its
condition and what happened, from what its events recorded when it came due. For a contact
and a topic, at any moment asked.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Contact, ContactEvent, Delivery, Notification, Topic
from hub.dispatch import audience, escalation
from hub.dispatch.pacing import Pacing
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EscalationUnless,
    EventType,
    WithdrawalReason,
)
from hub.preferences.model import Caps, Resolution, Step
from hub.preferences.resolver import resolve
from hub.services import delivery_words
from hub.services.errors import NotFound
from hub.services.hashing import AddressHasher


def for_contact(
    session: Session,
    contact: Contact,
    topic: Topic,
    *,
    at: dt.datetime,
    hasher: AddressHasher,
    caps: Caps,
) -> dict[str, Any]:
    steps: list[Step] = []
    resolution = _resolve(session, contact.id, topic, at=at, hasher=hasher, steps=steps, caps=caps)
    return {
        "contact": contact.external_id,
        "topic": topic.key,
        "evaluated_at": at,
        "outcome": _outcome(resolution),
        "rules": [_step(s) for s in steps],
    }


def for_delivery(
    session: Session, delivery_id: int, *, hasher: AddressHasher, caps: Caps
) -> dict[str, Any]:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id}")
    notification = session.get_one(Notification, delivery.notification_id)
    topic = session.get_one(Topic, notification.topic_id)
    contact = session.get(Contact, delivery.contact_id)
    at = delivery.created_at
    steps: list[Step] = []
    if contact is not None:
        moment = at
        if notification.local_at or notification.throttle:
            pacing = Pacing(notification, {})
            moment = pacing.moment(contact.timezone, at)
            if notification.local_at:
                steps.append(
                    Step(
                        "local_time",
                        "defer" if moment > at else "pass",
                        f"{notification.local_at} in {contact.timezone}",
                        delivery.channel,
                    )
                )
            if notification.throttle:
                steps.append(
                    Step(
                        "throttle", "pass", f"{notification.throttle} per minute", delivery.channel
                    )
                )
        _resolve(
            session,
            contact.id,
            topic,
            at=moment,
            hasher=hasher,
            steps=steps,
            caps=caps,
            excluding=delivery.notification_id,
        )
    rules = [s for s in steps if s.channel in (None, delivery.channel)]
    return {
        "delivery": {
            "id": delivery.id,
            "notification_id": delivery.notification_id,
            "contact": contact.external_id if contact else None,
            "channel": delivery.channel.value,
            "state": delivery.state.value,
            "reason": delivery.reason,
            "due_at": delivery.due_at,
            "attempts": delivery.attempts,
            "provider": delivery.provider,
            "error_code": delivery.error_code,
            "error": delivery.error,
        },
        "topic": topic.key,
        "evaluated_at": at,
        "rules": [_step(s) for s in rules],
        "note": "the rules at the moment of the decision, with the person's data as it is now",
        "escalation": chain(session, notification, delivery.contact_id),
    }


def _resolve(
    session: Session,
    contact_id: int,
    topic: Topic,
    *,
    at: dt.datetime,
    hasher: AddressHasher,
    steps: list[Step],
    caps: Caps,
    excluding: int = 0,
) -> Resolution:
    view = audience.topic_view(topic, caps)
    (recipient,) = audience.load(
        session,
        topic.id,
        [contact_id],
        hasher=hasher,
        now=at,
        count_for=audience.counts_for(view, excluding),
    )
    return resolve(
        contact=recipient.view,
        topic=view,
        history=recipient.history,
        subscription=recipient.subscription,
        preferences=recipient.preferences,
        suppressions=recipient.suppressions,
        moment=at,
        trace=steps,
    )


def _outcome(resolution: Resolution) -> dict[str, Any]:
    return {
        "send_now": [c.value for c in resolution.send_now],
        "deferred": [
            {"channel": d.channel.value, "until": d.until, "reason": d.reason.value}
            for d in resolution.deferred
        ],
        "refused": [
            {"channel": r.channel.value, "reason": r.reason.value, "detail": r.detail}
            for r in resolution.refused
        ],
    }


def _step(step: Step) -> dict[str, Any]:
    channel: Channel | None = step.channel
    return {
        "rule": step.rule,
        "verdict": step.verdict,
        "detail": step.detail,
        "channel": channel.value if channel else None,
    }


def chain(
    session: Session, notification: Notification, contact_id: int
) -> list[dict[str, Any]] | None:
    """A person's escalation chain of the notification (None: it has none): each step, its
    wait after the step before, its condition and what happened, in words."""
    steps = notification.escalation
    if not steps:
        return None
    rows = {
        d.step: d
        for d in session.scalars(
            select(Delivery).where(
                Delivery.notification_id == notification.id, Delivery.contact_id == contact_id
            )
        )
    }
    checks = _checks(session, contact_id, [d.id for d in rows.values()])
    first = min((s for s, d in rows.items() if _went_out(d)), default=None)
    explained = []
    for index, step in enumerate(steps):
        row = rows.get(index)
        unless = escalation.unless_of(step)
        outcome, detail = _what_happened(
            row, checks.get(row.id) if row else None, unless=unless, first=index == first
        )
        explained.append(
            {
                "step": index,
                "channel": Channel(step["channel"]).value,
                "after_seconds": float(step.get("after_seconds", 0)),
                "unless": unless.value,
                "delivery_id": row.id if row else None,
                "state": row.state.value if row else None,
                "outcome": outcome,
                "detail": detail,
            }
        )
    return explained


def _went_out(row: Delivery) -> bool:
    """Whether the row was planned to go (not refused at fan-out)."""
    return row.state is not DeliveryState.SUPPRESSED or row.reason == WithdrawalReason.CHAIN_STOPPED


def _checks(session: Session, contact_id: int, ids: Sequence[int]) -> dict[int, Mapping[str, Any]]:
    """Per delivery, the check its later step recorded when it came due (`changes.escalation`
    of its first event that has one)."""
    found: dict[int, Mapping[str, Any]] = {}
    events = session.scalars(
        select(ContactEvent.changes)
        .where(
            ContactEvent.contact_id == contact_id,
            ContactEvent.changes["delivery_id"].as_integer().in_(list(ids)),
            ContactEvent.type.in_(
                (
                    EventType.DELIVERY_SENT,
                    EventType.DELIVERY_REFUSED,
                    EventType.DELIVERY_FAILED,
                    EventType.DELIVERY_RETRYING,
                    EventType.DELIVERY_UNKNOWN,
                    EventType.DELIVERY_DEFERRED,
                )
            ),
        )
        .order_by(ContactEvent.id)
    )
    for changes in events:
        if not isinstance(changes, Mapping):
            continue
        check, delivery_id = changes.get("escalation"), changes.get("delivery_id")
        if isinstance(check, Mapping) and isinstance(delivery_id, int) and delivery_id in ids:
            found.setdefault(delivery_id, check)
    return found


def _what_happened(
    row: Delivery | None, check: Mapping[str, Any] | None, *, unless: EscalationUnless, first: bool
) -> tuple[str, str]:
    """(outcome, words): skipped, first, waiting, went, stopped, or the row's state."""
    if row is None:
        return "skipped", "skipped: not one of the channels the person chose"
    if check is not None:
        stop = check.get("stopped_by")
        if isinstance(stop, Mapping):
            return "stopped", f"stopped: {_stopped_words(stop)}"
        return "went", f"went: {_went_words(check, unless)}"
    state = row.state
    if state is DeliveryState.DEFERRED and row.reason == DeferralReason.ESCALATION:
        when = _moment(row.due_at)
        return "waiting", f"waits until {when}, then goes unless {_condition(unless)}"
    said = delivery_words.STATES.get(state, state.value)
    why = delivery_words.reason_words(state, row.reason)
    if first:
        return "first", f"the first step: went at once ({said}{f': {why}' if why else ''})"
    return state.value, f"{said}{f': {why}' if why else ''}"


def _condition(unless: EscalationUnless) -> str:
    return {
        EscalationUnless.REACHED: "an earlier step reached the person",
        EscalationUnless.OPENED: "a person opened an earlier step",
        EscalationUnless.CLICKED: "a person followed a link in an earlier step",
    }[unless]


def _stopped_words(stop: Mapping[str, Any]) -> str:
    """`opened at 2026-07-01 10:05 UTC (the e-mail, step 0)`."""
    what = {
        "delivered": "delivered",
        "accepted": "accepted by the provider",
        "opened": "opened",
        "clicked": "a link followed",
    }.get(str(stop.get("what")), str(stop.get("what")))
    noun = _noun(stop.get("channel"))
    at = _moment(_parsed(stop.get("at")))
    return f"{what} at {at} (the {noun}, step {stop.get('step')})"


def _went_words(check: Mapping[str, Any], unless: EscalationUnless) -> str:
    """`the e-mail was not opened within 1 day`, and what became of each earlier step that
    never reached the person."""
    earlier = [e for e in check.get("earlier", []) if isinstance(e, Mapping)]
    nouns = delivery_words.listed([f"the {_noun(e.get('channel'))}" for e in earlier])
    within = _duration(check.get("waited_seconds", check.get("after_seconds")))
    verb = {
        EscalationUnless.REACHED: "did not reach the person",
        EscalationUnless.OPENED: "was not opened",
        EscalationUnless.CLICKED: "had no link followed",
    }[unless]
    said = f"{nouns or 'no earlier step'} {verb} within {within}"
    ended = [
        f"the {_noun(e.get('channel'))} {delivery_words.STATES.get(str(e.get('state')), '')}"
        for e in earlier
        if e.get("state") in _ENDED
    ]
    return said + (f" ({delivery_words.listed(ended)})" if ended else "")


_ENDED = frozenset(
    {DeliveryState.FAILED, DeliveryState.BOUNCED, DeliveryState.SUPPRESSED, DeliveryState.UNKNOWN}
)


def _noun(channel: Any) -> str:
    one, _ = delivery_words.NOUNS.get(str(channel), (str(channel), ""))
    return one


def _duration(seconds: Any) -> str:
    """`1 day`, `90 minutes`, `2 hours`, `1.8 seconds`: the largest unit it is a whole
    number of."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return "its wait"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)} {unit}{'' if count == 1 else 's'}"
    whole = int(seconds) if seconds == int(seconds) else round(seconds, 3)
    return f"{whole} second{'' if whole == 1 else 's'}"


def _parsed(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _moment(at: dt.datetime | None) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "an unknown time"
