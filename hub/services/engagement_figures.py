"""Engagement figures of a set of notifications (a campaign's runs, or one notification):
how many e-mails reached people, who opened and clicked them — people apart from machines —
which links, who unsubscribed because of them, and when people opened and clicked.

What the figures mean:
- *delivered*: e-mail deliveries in state `sent` or `delivered` (a mail server accepted
  them; e-mail rarely reports more), and the people they reached;
- *human*: opens and clicks not flagged as a machine's (`engagements.machine` false);
  *all*: people whose message was opened or clicked by anyone, machines included (a privacy
  proxy that fetches every image, a mail filter that follows every link);
- *opened*, *clicked*: people, each once however often they came back;
- *open rate*, *click rate*: human people who opened (clicked) per person delivered to;
  *click-to-open*: human clickers per human opener (over 100% is possible: a person whose
  mail client blocks images clicks without an open being seen);
- *machine* figures: what was recorded as a machine's (the first per message and link), by
  the reason it was judged one;
- *over time*: people's first open and first click of each message, per hour from the hour
  the first one was sent (wider steps when the span is long);
- *unsubscribed*: see `hub.services.engagement_unsubscribes`.

A handful of grouped statements, whatever the audience: a campaign to 100,000 people is
counted in a fraction of a second on SQLite (bench/engagement_figures.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, distinct, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.db.models import Campaign, Delivery, Engagement, Notification, Topic
from hub.domain import Channel, DeliveryState, EngagementKind
from hub.services import engagement_unsubscribes as unsubscribes

WENT = unsubscribes.WENT
# Hours per step of the chart: the smallest that keeps it to MAX_STEPS points.
STEPS = (1, 3, 6, 12, 24, 7 * 24)
MAX_STEPS = 48


@dataclass(frozen=True)
class Link:
    """One tracked link of the message, by its place in it (links count from 1)."""

    channel: str
    index: int
    url: str | None
    people: int  # human
    all_people: int  # machines included


@dataclass(frozen=True)
class OverTime:
    """People's first opens and first clicks per step, from `start` (a whole hour)."""

    start: dt.datetime
    step_hours: int
    opens: list[int]
    clicks: list[int]

    @property
    def ends(self) -> list[dt.datetime]:
        step = dt.timedelta(hours=self.step_hours)
        return [self.start + step * (i + 1) for i in range(len(self.opens))]


@dataclass
class Figures:
    delivered: int = 0
    delivered_people: int = 0
    bounced: int = 0
    opened: int = 0
    opened_all: int = 0
    clicked: int = 0
    clicked_all: int = 0
    machine_opens: dict[str, int] = field(default_factory=dict)
    machine_clicks: dict[str, int] = field(default_factory=dict)
    unsubscribed: int = 0
    # Who they are: contact id to the channels it reached them on (the campaign report's
    # per-channel row reads them instead of asking again).
    left: dict[int, set[str]] = field(default_factory=dict, repr=False)
    links: list[Link] = field(default_factory=list)
    over_time: OverTime | None = None
    sms_delivered: int = 0
    sms_clicked: int = 0
    sms_clicked_all: int = 0
    tracked: bool = False  # its own setting, else its topic's (people may still opt out)
    rule: str = unsubscribes.RULE

    @property
    def open_rate(self) -> float | None:
        return _ratio(self.opened, self.delivered_people)

    @property
    def click_rate(self) -> float | None:
        return _ratio(self.clicked, self.delivered_people)

    @property
    def click_to_open(self) -> float | None:
        return _ratio(self.clicked, self.opened)


def for_campaign(session: Session, campaign: Campaign) -> Figures:
    ids = select(Notification.id).where(Notification.campaign_id == campaign.id)
    topic = session.execute(
        select(Topic.key, Topic.tracking).where(Topic.id == campaign.topic_id)
    ).one()
    found = figures(session, ids, topic_id=campaign.topic_id, topic_key=topic.key)
    found.tracked = topic.tracking if campaign.tracking is None else campaign.tracking
    return found


def for_notification(session: Session, notification: Notification) -> Figures:
    topic = session.execute(
        select(Topic.key, Topic.tracking).where(Topic.id == notification.topic_id)
    ).one()
    found = figures(session, [notification.id], topic_id=notification.topic_id, topic_key=topic.key)
    found.tracked = topic.tracking if notification.tracking is None else notification.tracking
    return found


def figures(session: Session, ids: Any, *, topic_id: int, topic_key: str) -> Figures:
    """The figures of the notifications `ids` (a list, or a SELECT of ids) of one topic."""
    found = Figures()
    # Any channel's message may make a person leave (a call, a webhook's app too).
    found.left = unsubscribes.attributed(session, ids, topic_id=topic_id, topic_key=topic_key)
    found.unsubscribed = len(found.left)
    first_sent = _delivered(session, ids, found)
    if first_sent is None:
        return found  # no e-mail or SMS went: nothing to open or click
    _people(session, ids, found)
    _machines(session, ids, found)
    found.links = _links(session, ids)
    found.over_time = _over_time(session, ids, first_sent)
    return found


def _delivered(session: Session, ids: Any, found: Figures) -> dt.datetime | None:
    """Deliveries and people reached on e-mail and SMS, bounces; the first send's time."""
    went = Delivery.state.in_(WENT)
    rows = session.execute(
        select(
            Delivery.channel,
            func.count(case((went, 1))),
            func.count(distinct(case((went, Delivery.contact_id)))),
            func.count(case((Delivery.state == DeliveryState.BOUNCED, 1))),
            func.min(case((went, Delivery.sent_at))),
        )
        .where(
            Delivery.notification_id.in_(ids),
            Delivery.channel.in_((Channel.EMAIL, Channel.SMS)),
        )
        .group_by(Delivery.channel)
    )
    first: dt.datetime | None = None
    for channel, delivered, people, bounced, sent_at in rows:
        if channel is Channel.EMAIL:
            found.delivered, found.delivered_people, found.bounced = delivered, people, bounced
        else:
            found.sms_delivered = delivered
        at = _aware(sent_at)
        if at is not None and (first is None or at < first):
            first = at
    return first


def _people(session: Session, ids: Any, found: Figures) -> None:
    """People who opened and clicked, human and all, per channel and kind."""
    human = Engagement.machine.is_(False)
    rows = session.execute(
        select(
            Delivery.channel,
            Engagement.kind,
            func.count(distinct(case((human, Engagement.contact_id)))),
            func.count(distinct(Engagement.contact_id)),
        )
        .join(Delivery, Delivery.id == Engagement.delivery_id)
        .where(Engagement.notification_id.in_(ids))
        .group_by(Delivery.channel, Engagement.kind)
    )
    for channel, kind, people, everyone in rows:
        if channel is Channel.EMAIL and kind is EngagementKind.OPEN:
            found.opened, found.opened_all = people, everyone
        elif channel is Channel.EMAIL:
            found.clicked, found.clicked_all = people, everyone
        elif channel is Channel.SMS and kind is EngagementKind.CLICK:
            found.sms_clicked, found.sms_clicked_all = people, everyone


def _machines(session: Session, ids: Any, found: Figures) -> None:
    rows = session.execute(
        select(Engagement.kind, Engagement.machine_reason, func.count())
        .where(Engagement.notification_id.in_(ids), Engagement.machine.is_(True))
        .group_by(Engagement.kind, Engagement.machine_reason)
    )
    for kind, reason, count in rows:
        target = found.machine_opens if kind is EngagementKind.OPEN else found.machine_clicks
        name = reason.value if reason is not None else "unknown"
        target[name] = target.get(name, 0) + count
    found.machine_opens = dict(sorted(found.machine_opens.items(), key=lambda kv: -kv[1]))
    found.machine_clicks = dict(sorted(found.machine_clicks.items(), key=lambda kv: -kv[1]))


def _links(session: Session, ids: Any) -> list[Link]:
    """Each link by its place in the message; its target as recorded (one of them, should a
    template give each person their own)."""
    human = Engagement.machine.is_(False)
    rows = session.execute(
        select(
            Delivery.channel,
            Engagement.link_index,
            func.max(Engagement.url),
            func.count(distinct(case((human, Engagement.contact_id)))),
            func.count(distinct(Engagement.contact_id)),
        )
        .join(Delivery, Delivery.id == Engagement.delivery_id)
        .where(Engagement.notification_id.in_(ids), Engagement.kind == EngagementKind.CLICK)
        .group_by(Delivery.channel, Engagement.link_index)
    )
    order = [c.value for c in Channel]
    links = [
        Link(channel=channel.value, index=index, url=url, people=people, all_people=everyone)
        for channel, index, url, people, everyone in rows
    ]
    return sorted(links, key=lambda link: (order.index(link.channel), link.index))


def _over_time(session: Session, ids: Any, first_sent: dt.datetime) -> OverTime | None:
    """Each message's first human open and first human click, counted per hour."""
    firsts = (
        select(
            Engagement.delivery_id,
            Engagement.kind,
            func.min(Engagement.occurred_at).label("at"),
        )
        .join(Delivery, Delivery.id == Engagement.delivery_id)
        .where(
            Engagement.notification_id.in_(ids),
            Engagement.machine.is_(False),
            Delivery.channel == Channel.EMAIL,
        )
        .group_by(Engagement.delivery_id, Engagement.kind)
        .subquery()
    )
    hour = _hour(session, firsts.c.at).label("hour")
    rows = session.execute(
        select(firsts.c.kind, hour, func.count()).group_by(firsts.c.kind, hour)
    ).all()
    if not rows:
        return None
    start = first_sent.replace(minute=0, second=0, microsecond=0)
    counted: dict[tuple[str, int], int] = {}
    last = 0
    for kind, text, count in rows:
        at = dt.datetime.fromisoformat(f"{text}:00").replace(tzinfo=dt.UTC)
        hours = max(0, int((at - start).total_seconds()) // 3600)  # a clock set back: hour 0
        counted[(str(kind), hours)] = counted.get((str(kind), hours), 0) + count
        last = max(last, hours)
    step = next((s for s in STEPS if (last + 1) / s <= MAX_STEPS), STEPS[-1])
    size = last // step + 1
    opens, clicks = [0] * size, [0] * size
    for (kind, hours), count in counted.items():
        (opens if kind == EngagementKind.OPEN else clicks)[hours // step] += count
    return OverTime(start=start, step_hours=step, opens=opens, clicks=clicks)


def _hour(session: Session, column: Any) -> ColumnElement[str]:
    """A UTC time to its hour as text, `2026-12-07 08`, by the database (as the campaign
    report's minutes: SQLite keeps times as text, PostgreSQL as timestamps)."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.to_char(utc, literal_column("'YYYY-MM-DD HH24'"))
    return func.substr(column, literal_column("1"), literal_column("13"))


def _aware(value: Any) -> dt.datetime | None:
    """min() over a CASE loses the column's type: SQLite answers text, PostgreSQL a time."""
    if value is None:
        return None
    at = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None
