"""Campaigns whose deliveries are in chosen states, written with Core inserts: a known mix for
the report's tests and pages, and 100,000 people for timing the report
(bench/campaign_report.py). The rows are what the dispatcher would have written; the report
reads them as it reads real ones."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, insert, select, update

from hub.db.models import (
    Campaign,
    Contact,
    ContactEvent,
    Delivery,
    Notification,
    Subscription,
    Template,
    Topic,
)
from tests import seeding

ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "UTC")


def topic(db: Connection, key: str, *, now: dt.datetime) -> int:
    return seeding.topic(db, key, ["email", "sms", "voice", "webhook"], now=now)


def template(db: Connection, key: str, *, now: dt.datetime, version: int = 1) -> None:
    variants = {
        "": {
            "email_subject": "Winter sale",
            "email_text": "Up to 30% off.",
            "sms_body": "Up to 30% off.",
        }
    }
    db.execute(
        insert(Template),
        [{"key": key, "description": None, "variants": variants, "version": version,
          "created_at": now, "updated_at": now}],
    )  # fmt: skip


def contacts(
    db: Connection, first_id: int, count: int, *, now: dt.datetime, zones: Sequence[str] = ZONES
) -> list[int]:
    """`count` people with ids from `first_id`, external ids `p<id>`, zones in turn."""
    ids = list(range(first_id, first_id + count))
    rows: list[dict[str, Any]] = [
        {"id": i, "external_id": f"p{i}", "kind": "client", "name": f"Person {i}",
         "email": f"p{i}@example.com", "phone": f"+4915{i:09d}", "webhook_url": None,
         "locale": None, "timezone": zones[i % len(zones)], "attributes": {},
         "link_key": f"k{i}", "created_at": now, "updated_at": now}
        for i in ids
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        db.execute(insert(Contact), rows[start : start + 5000])
    return ids


def subscribed(
    db: Connection,
    topic_id: int,
    contact_ids: Iterable[int],
    *,
    now: dt.datetime,
    status: str = "subscribed",
) -> None:
    rows = [
        {"contact_id": i, "topic_id": topic_id, "status": status, "channels": ["email", "sms"],
         "frequency": "immediate", "consent_source": "seed", "consent_actor": "seed",
         "consent_at": now, "created_at": now, "updated_at": now}
        for i in contact_ids
    ]  # fmt: skip
    for start in range(0, len(rows), 5000):
        db.execute(insert(Subscription), rows[start : start + 5000])


def campaign(
    db: Connection,
    *,
    topic_id: int,
    name: str,
    now: dt.datetime,
    state: str = "sending",
    template_key: str = "offer",
    template_version: int | None = 1,
) -> tuple[int, int]:
    """A campaign and the notification of its one run: (campaign id, notification id)."""
    campaign_id = db.execute(
        insert(Campaign).returning(Campaign.id),
        [{"name": name, "topic_id": topic_id, "template_key": template_key, "data": {},
          "segment": None, "segment_key": None, "channels": None,
          "schedule": {"kind": "now"}, "throttle": None, "state": state, "next_run_at": None,
          "created_by": "mia@acme.example", "approved_by": None, "approved_at": None,
          "created_at": now, "updated_at": now}],
    ).scalar_one()  # fmt: skip
    notification_id = notification(
        db,
        topic_id=topic_id,
        now=now,
        source=f"campaign:{campaign_id}",
        campaign_id=campaign_id,
        template_key=template_key,
        template_version=template_version,
    )
    return int(campaign_id), notification_id


def notification(
    db: Connection,
    *,
    topic_id: int,
    now: dt.datetime,
    source: str = "key:crm",
    campaign_id: int | None = None,
    template_key: str | None = "offer",
    template_version: int | None = 1,
    data: dict[str, Any] | None = None,
) -> int:
    row = {
        "topic_id": topic_id, "template_key": template_key, "template_version": template_version,
        "variants": {}, "data": data or {}, "recipients": None, "channels": None,
        "source": source, "state": "fanned_out", "campaign_id": campaign_id, "segment": None,
        "local_at": None, "throttle": None, "held": False, "escalation": None, "cursor": 0,
        "due_at": now, "created_at": now, "fanned_out_at": now,
    }  # fmt: skip
    return int(db.execute(insert(Notification).returning(Notification.id), [row]).scalar_one())


def deliveries(
    db: Connection,
    notification_id: int,
    rows: Iterable[dict[str, Any]],
    *,
    planned: dt.datetime | None = None,
) -> None:
    """Delivery rows: each names `contact_id`, `channel` and `state`, and may give `reason`,
    `sent_at`, `updated_at`, `not_before`, `error_code`, `error`, `attempts`; each was
    planned (created) at `planned`, else at its last change."""
    full = []
    for row in rows:
        at = row.get("updated_at") or row.get("sent_at")
        full.append(
            {"notification_id": notification_id, "address": None, "attempts": 1, "step": 0,
             "due_at": row.get("not_before"), "not_before": None, "ambiguous": False,
             "provider": None, "provider_id": None, "error_code": None, "error": None,
             "reason": None, "sent_at": None, "created_at": planned or at, "updated_at": at,
             **row}
        )  # fmt: skip
    for start in range(0, len(full), 5000):
        db.execute(insert(Delivery), full[start : start + 5000])


def unsubscribed(db: Connection, contact_id: int, topic_key: str, *, at: dt.datetime) -> None:
    """The person left the topic at `at`: their subscription and their timeline say so, as
    the one-click link leaves them."""
    topic_id = db.execute(select(Topic.id).where(Topic.key == topic_key)).scalar_one()
    db.execute(
        update(Subscription)
        .where(Subscription.contact_id == contact_id, Subscription.topic_id == topic_id)
        .values(status="unsubscribed")
    )
    event(
        db,
        contact_id,
        "subscription.changed",
        at=at,
        topic_key=topic_key,
        changes={"status": {"before": "subscribed", "after": "unsubscribed"}},
    )


def event(
    db: Connection,
    contact_id: int,
    kind: str,
    *,
    at: dt.datetime,
    topic_key: str | None = None,
    changes: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    db.execute(insert(ContactEvent), [_event(contact_id, kind, at, topic_key, changes, reason)])


def _event(
    contact_id: int,
    kind: str,
    at: dt.datetime,
    topic_key: str | None,
    changes: dict[str, Any] | None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {"contact_id": contact_id, "occurred_at": at, "type": kind, "actor_kind": "system",
            "actor": "seed", "source": "seed", "topic_key": topic_key, "channel": None,
            "changes": changes, "reason": reason, "ip": None, "user_agent": None}  # fmt: skip


# The large campaign's mix: per 100 e-mails, and per 100 SMS (to three in ten people).
EMAIL_MIX = (("delivered", 60), ("sent", 18), ("bounced", 4), ("failed", 3),
             ("deferred", 8), ("suppressed", 7))  # fmt: skip
SMS_MIX = (("delivered", 50), ("failed", 5), ("deferred", 40), ("suppressed", 5))


def large(db: Connection, *, people: int, now: dt.datetime, first_id: int = 1) -> int:
    """A campaign to `people` people (e-mail to all, SMS to three in ten) started two hours
    before `now`, with a timeline as the dispatcher leaves it (an event per send and per
    outcome) and one in a hundred unsubscribing afterwards; its id."""
    topic_id = topic(db, "bulk", now=now)
    ids = contacts(db, first_id, people, now=now)
    leaving = {i for n, i in enumerate(ids) if n % 100 == 7}
    subscribed(db, topic_id, [i for i in ids if i not in leaving], now=now)
    subscribed(db, topic_id, leaving, now=now, status="unsubscribed")
    campaign_id, notification_id = campaign(db, topic_id=topic_id, name="Bulk", now=now)
    start = now - dt.timedelta(hours=2)
    rows, events = [], []
    email_states = itertools.cycle([s for s, n in EMAIL_MIX for _ in range(n)])
    sms_states = itertools.cycle([s for s, n in SMS_MIX for _ in range(n)])
    for n, contact_id in enumerate(ids):
        at = start + dt.timedelta(seconds=n * 7200 / people)
        plan = [("email", next(email_states))]
        if n % 10 < 3:
            plan.append(("sms", next(sms_states)))
        for channel, state in plan:
            row = _large_row(contact_id, channel, state, at, now)
            rows.append(row)
            if row.get("sent_at"):
                events.append(_event(contact_id, "delivery.sent", at, "bulk", None))
        if n % 100 == 7:
            later = at + dt.timedelta(minutes=5)
            change = {"status": {"before": "subscribed", "after": "unsubscribed"}}
            events.append(_event(contact_id, "subscription.changed", later, "bulk", change))
    deliveries(db, notification_id, rows, planned=start)
    for begin in range(0, len(events), 5000):
        db.execute(insert(ContactEvent), events[begin : begin + 5000])
    return campaign_id


def _large_row(
    contact_id: int, channel: str, state: str, at: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    row: dict[str, Any] = {"contact_id": contact_id, "channel": channel, "state": state}
    if state in ("delivered", "sent", "bounced"):
        row |= {"sent_at": at, "updated_at": at + dt.timedelta(minutes=2)}
    elif state == "failed":
        row |= {"updated_at": at, "reason": "rejected", "error": "550 no such user"}
    elif state == "deferred":
        reason = "legal_window" if channel == "sms" else "quiet_hours"
        row |= {"updated_at": at, "reason": reason, "not_before": now + dt.timedelta(hours=9)}
    else:
        row |= {"updated_at": at, "reason": "suppressed:hard_bounce"}
    if state == "bounced":
        row["reason"] = "hard_bounce"
    return row


def campaign_id_of(db: Connection, name: str) -> int:
    return int(db.execute(select(Campaign.id).where(Campaign.name == name)).scalar_one())


@dataclass(frozen=True)
class Mixed:
    """What `mixed` wrote: ids, and when the SMS held for the legal window go."""

    topic_id: int
    campaign_id: int
    notification_id: int
    legal: dict[int, dt.datetime]  # contact id: the moment its SMS may go
    throttled: tuple[dt.datetime, dt.datetime]
    start: dt.datetime


def next_local(now: dt.datetime, zone: str, hour: int) -> dt.datetime:
    """The next `hour`:00 in `zone` after `now`, in UTC."""
    local = now.astimezone(ZoneInfo(zone))
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at <= local:
        at = (local + dt.timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return at.astimezone(dt.UTC)


MIXED_ZONES = {13: "Asia/Tokyo", 14: "Asia/Tokyo", 15: "America/New_York"}


def mixed(db: Connection, *, now: dt.datetime, name: str = "Winter sale") -> Mixed:
    """A campaign on topic `offers` (template `offer`, version 3) in a known mix, started
    three hours before `now`:

    e-mail: 4 delivered, 2 sent, 1 bounced (hard), 1 failed (rejected), 2 held by the
    throttle, 1 refused as unsubscribed, 1 refused as a suppressed address;
    SMS: 2 delivered, 1 failed (Twilio: undelivered), 3 held for the legal window (two in
    Tokyo, one in New York), 2 refused for want of a number.
    p1 unsubscribed after it reached them (by e-mail and SMS); p4 unsubscribed before its
    e-mail went, and p2 left another topic: neither counts.
    """
    topic_id = topic(db, "offers", now=now)
    other = topic(db, "news", now=now)
    template(db, "offer", now=now, version=3)
    zones = [MIXED_ZONES.get(i, ZONES[i % len(ZONES)]) for i in range(1, 17)]
    for i, zone in enumerate(zones, start=1):
        contacts(db, i, 1, now=now, zones=[zone])
    subscribed(db, topic_id, range(1, 17), now=now)
    subscribed(db, other, [2], now=now)
    campaign_id, notification_id = campaign(
        db, topic_id=topic_id, name=name, now=now - dt.timedelta(hours=3), template_version=3
    )
    start = now - dt.timedelta(hours=3)

    def at(minutes: int) -> dt.datetime:
        return start + dt.timedelta(minutes=minutes)

    def went(contact: int, channel: str, state: str, sent: int, later: int) -> dict[str, Any]:
        return {"contact_id": contact, "channel": channel, "state": state,
                "sent_at": at(sent), "updated_at": at(sent + later)}  # fmt: skip

    legal = {c: next_local(now, MIXED_ZONES[c], 8) for c in (13, 14, 15)}
    throttled = (now + dt.timedelta(minutes=10), now + dt.timedelta(minutes=20))
    rows = [
        went(1, "email", "delivered", 10, 2),
        went(2, "email", "delivered", 20, 2),
        went(3, "email", "delivered", 70, 2),
        went(4, "email", "delivered", 80, 2),
        went(5, "email", "sent", 30, 0),
        went(6, "email", "sent", 90, 0),
        went(7, "email", "bounced", 40, 5)
        | {"reason": "hard_bounce", "error_code": "5.1.1", "error": "550 5.1.1 user unknown"},
        {"contact_id": 8, "channel": "email", "state": "failed", "updated_at": at(50),
         "reason": "rejected", "error_code": "554", "error": "554 message refused"},
        {"contact_id": 9, "channel": "email", "state": "deferred", "updated_at": at(60),
         "reason": "throttled", "not_before": throttled[0]},
        {"contact_id": 10, "channel": "email", "state": "deferred", "updated_at": at(60),
         "reason": "throttled", "not_before": throttled[1]},
        {"contact_id": 11, "channel": "email", "state": "suppressed", "updated_at": at(0),
         "reason": "unsubscribed"},
        {"contact_id": 12, "channel": "email", "state": "suppressed", "updated_at": at(0),
         "reason": "suppressed:hard_bounce"},
        went(1, "sms", "delivered", 15, 1),
        went(2, "sms", "delivered", 25, 1),
        {"contact_id": 3, "channel": "sms", "state": "failed", "updated_at": at(75),
         "attempts": 3, "reason": "twilio:undelivered", "error_code": "30003",
         "error": "Unreachable destination handset"},
        *({"contact_id": c, "channel": "sms", "state": "deferred", "updated_at": at(5),
           "reason": "legal_window", "not_before": legal[c]} for c in (13, 14, 15)),
        {"contact_id": 5, "channel": "sms", "state": "suppressed", "updated_at": at(0),
         "reason": "no_address"},
        {"contact_id": 6, "channel": "sms", "state": "suppressed", "updated_at": at(0),
         "reason": "no_address"},
    ]  # fmt: skip
    deliveries(db, notification_id, rows, planned=start)
    unsubscribed(db, 1, "offers", at=at(30))
    unsubscribed(db, 4, "offers", at=at(5))
    unsubscribed(db, 2, "news", at=at(30))
    return Mixed(topic_id, campaign_id, notification_id, legal, throttled, start)
