"""Opens and clicks written as the recorder keeps them (hub.dispatch.engagement): one
`engagements` row per delivery, kind, link and person-or-machine, the first of each. For the
engagement figures' tests and pages, and for timing them on 100,000 people
(bench/engagement_figures.py)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from hub.db.models import Delivery, Engagement, Notification
from tests import reporting


@dataclass(frozen=True)
class Hit:
    """One open (`link` 0) or click (`link` from 1) of a delivery; `machine` names why it is
    a machine's (a MachineReason value), None for a person."""

    delivery_id: int
    link: int = 0
    after: dt.timedelta = dt.timedelta(minutes=30)  # after the delivery was sent
    machine: str | None = None
    url: str | None = None


def hits(db: Connection, found: Iterable[Hit]) -> int:
    """Write the hits as rows, each placed `after` its delivery's send; how many."""
    wanted = list(found)
    ids = {h.delivery_id for h in wanted}
    deliveries = {
        row.id: row
        for start in range(0, len(ids), 5000)
        for row in db.execute(
            select(
                Delivery.id, Delivery.notification_id, Delivery.contact_id, Delivery.sent_at
            ).where(Delivery.id.in_(sorted(ids)[start : start + 5000]))
        )
    }
    rows: list[dict[str, Any]] = []
    for hit in wanted:
        delivery = deliveries[hit.delivery_id]
        assert delivery.sent_at is not None, f"delivery {hit.delivery_id} was not sent"
        agent = {"privacy_proxy": "privacy_proxy", None: "browser"}.get(hit.machine)
        rows.append(
            {"delivery_id": hit.delivery_id, "notification_id": delivery.notification_id,
             "contact_id": delivery.contact_id, "kind": "click" if hit.link else "open",
             "link_index": hit.link,
             "url": hit.url or (f"https://shop.example/{hit.link}" if hit.link else None),
             "machine": hit.machine is not None, "machine_reason": hit.machine,
             "agent": agent or "link_scanner", "occurred_at": delivery.sent_at + hit.after}
        )  # fmt: skip
    for start in range(0, len(rows), 5000):
        db.execute(insert(Engagement), rows[start : start + 5000])
    return len(rows)


def sent_email(db: Connection, notification_id: int) -> dict[int, int]:
    """The notification's e-mail deliveries that went: contact id to delivery id."""
    rows = db.execute(
        select(Delivery.contact_id, Delivery.id).where(
            Delivery.notification_id == notification_id,
            Delivery.channel == "email",
            Delivery.state.in_(("sent", "delivered")),
        )
    )
    return {int(contact_id): int(delivery_id) for contact_id, delivery_id in rows}


def large(db: Connection, *, people: int, now: dt.datetime) -> int:
    """reporting.large's campaign to `people`, with engagement as a real audience leaves it:
    of the e-mails that went, 4 in 10 opened by a person (3 of them within the first hours),
    1 in 5 opened by a privacy proxy, 1 in 10 clicked by a person on one of three links, and
    1 in 20 scanned: every link followed by a machine. Its campaign id."""
    campaign_id = reporting.large(db, people=people, now=now)
    notification_id = db.execute(
        select(Notification.id).where(Notification.campaign_id == campaign_id)
    ).scalar_one()
    found: list[Hit] = []
    for n, delivery_id in enumerate(sent_email(db, notification_id).values()):
        if n % 10 < 4:
            found.append(Hit(delivery_id, after=dt.timedelta(minutes=5 + n % 300)))
        if n % 5 == 4:
            found.append(Hit(delivery_id, after=dt.timedelta(seconds=3), machine="privacy_proxy"))
        if n % 10 == 1:
            found.append(Hit(delivery_id, link=1 + n % 3, after=dt.timedelta(minutes=9)))
        if n % 20 == 3:
            found.extend(
                Hit(delivery_id, link=link, after=dt.timedelta(seconds=2), machine="all_links")
                for link in (1, 2, 3)
            )
    hits(db, found)
    return campaign_id


M = dt.timedelta(minutes=1)


def known(db: Connection, *, now: dt.datetime) -> reporting.Mixed:
    """reporting.mixed, with opens and clicks of its e-mails: p1 opens 20 minutes after theirs
    went and follows link 2 5 minutes later; p2 opens after an hour; p3 opens after 5 minutes
    and follows link 1 after two hours; p5's privacy proxy opens it at once; p6's mail filter
    follows both links at once."""
    mixed = reporting.mixed(db, now=now)
    ids = sent_email(db, mixed.notification_id)
    hits(
        db,
        [
            Hit(ids[1], after=20 * M),
            Hit(ids[1], link=2, after=25 * M),
            Hit(ids[2], after=60 * M),
            Hit(ids[3], after=5 * M),
            Hit(ids[3], link=1, after=120 * M),
            Hit(ids[5], after=M, machine="privacy_proxy"),
            Hit(ids[6], link=1, after=M, machine="all_links"),
            Hit(ids[6], link=2, after=M, machine="all_links"),
        ],
    )
    return mixed
