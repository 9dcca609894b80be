"""A campaign's report: what became of its deliveries, overall, by channel and over time; why
some wait and until when; why some were refused; who unsubscribed after it; which failed.

Every figure comes from a GROUP BY over the campaign's deliveries (a handful of statements,
whatever the audience), never from loading a row per delivery: a campaign to 100,000 people
reports in a fraction of a second on SQLite.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from hub.db.models import (
    Campaign,
    Contact,
    ContactEvent,
    Delivery,
    Notification,
    Topic,
)
from hub.domain import Channel, DeliveryState, EventType, RefusalWhy
from hub.services import delivery_words as words
from hub.services import engagement_unsubscribes as unsubscribes
from hub.services import timeline_refusal_words as refusal_words

FAILED = (DeliveryState.FAILED, DeliveryState.BOUNCED)
# What the chart follows, and which time of a delivery places it: `sent` by when it left,
# the others by their last change (when it was delivered, bounced, failed or deferred).
CHARTED = ("sent", "delivered", "bounced", "failed", "deferred")
_BY_UPDATE = (
    DeliveryState.DELIVERED,
    DeliveryState.BOUNCED,
    DeliveryState.FAILED,
    DeliveryState.DEFERRED,
)
# Bucket sizes to choose from: the smallest that keeps the chart to MAX_BUCKETS points.
STEPS = (60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_BUCKETS = 48
CHANNEL_ORDER = [c.value for c in Channel]


@dataclass
class Totals:
    """One row of figures. `sent` counts what left Hub (its `sent_at` is set), so it holds
    the delivered and bounced ones too; `deferred` what waits; `refused` what was never sent
    (state `suppressed`); `unsubscribed` people who left the topic after receiving it."""

    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    failed: int = 0
    deferred: int = 0
    refused: int = 0
    unsubscribed: int = 0
    queued: int = 0
    sending: int = 0
    unknown: int = 0
    total: int = 0

    def add(self, state: DeliveryState, count: int, sent: int) -> None:
        self.total += count
        self.sent += sent
        name = "refused" if state is DeliveryState.SUPPRESSED else state.value
        if hasattr(self, name) and name != "sent":
            setattr(self, name, getattr(self, name) + count)


@dataclass(frozen=True)
class Waiting:
    """Deferred deliveries of one reason: how many on each channel, and when they go."""

    reason: str
    by_channel: dict[str, int]
    first: dt.datetime | None
    first_zone: str | None
    last: dt.datetime | None
    last_zone: str | None
    sentence: str

    @property
    def count(self) -> int:
        return sum(self.by_channel.values())


@dataclass(frozen=True)
class Refused:
    reason: str  # as stored: `unsubscribed`, `suppressed:hard_bounce`
    words: str
    by_channel: dict[str, int]

    @property
    def count(self) -> int:
        return sum(self.by_channel.values())


@dataclass(frozen=True)
class Failure:
    id: int
    notification_id: int
    contact: str  # external id
    channel: str
    state: str
    reason: str | None
    words: str
    error_code: str | None
    error: str | None
    attempts: int
    at: dt.datetime


@dataclass(frozen=True)
class Timeline:
    """Cumulative counts at the end of each bucket; `ends[i]` closes bucket i."""

    start: dt.datetime
    step: dt.timedelta
    ends: list[dt.datetime]
    series: dict[str, list[int]]


@dataclass(frozen=True)
class LeftBecause:
    reason: str  # a RefusalWhy's value
    words: str  # as staff read it: "too many messages"
    count: int


@dataclass
class Report:
    campaign_id: int
    name: str
    state: str
    topic: str
    template: str
    runs: int
    totals: Totals
    by_channel: dict[str, Totals]
    waiting: list[Waiting] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    failures_after: int | None = None  # the cursor of the next page of failures
    timeline: Timeline | None = None
    # Why those who left said they did, most given first; who gave no answer is not here.
    reasons: list[LeftBecause] = field(default_factory=list)


def build(
    session: Session,
    campaign: Campaign,
    *,
    now: dt.datetime,
    failures_after: int | None = None,
    failures_limit: int = 50,
    left: Mapping[int, Collection[str]] | None = None,
) -> Report:
    """The report of `campaign` as it stands `now`; failures a page at a time, by id.
    `left`: who unsubscribed because of it, when the caller counted them already (the
    engagement figures do)."""
    topic = session.execute(select(Topic.id, Topic.key).where(Topic.id == campaign.topic_id)).one()
    ids = select(Notification.id).where(Notification.campaign_id == campaign.id)
    runs = session.scalar(select(func.count()).select_from(ids.subquery())) or 0
    report = Report(
        campaign_id=campaign.id,
        name=campaign.name,
        state=campaign.state.value,
        topic=topic.key,
        template=campaign.template_key,
        runs=runs,
        totals=Totals(),
        by_channel={},
    )
    if not runs:
        return report
    minutes = _scan(session, ids, report)
    _unsubscribed(session, ids, report, campaign=campaign, topic_key=topic.key, left=left)
    report.waiting = _waiting(session, ids, now=now)
    report.failures, report.failures_after = _failures(
        session, ids, after=failures_after, limit=failures_limit
    )
    report.timeline = timeline(minutes)
    return report


Minutes = dict[tuple[str, dt.datetime], int]  # (what, the minute it happened in): how many


def _scan(session: Session, ids: Any, report: Report) -> Minutes:
    """One grouped pass over the campaign's deliveries: the totals, each channel's row and
    the refusals by reason, and the minute each charted thing happened in (bucketed for the
    chart afterwards, so no second pass is needed to learn the span first)."""
    charted = Delivery.state.in_(_BY_UPDATE)
    why = case((Delivery.state == DeliveryState.SUPPRESSED, Delivery.reason)).label("why")
    changed = case((charted, _minute(session, Delivery.updated_at))).label("changed")
    sent = _minute(session, Delivery.sent_at).label("sent")
    rows = session.execute(
        select(Delivery.channel, Delivery.state, why, changed, sent, func.count())
        .where(Delivery.notification_id.in_(ids))
        .group_by(Delivery.channel, Delivery.state, why, changed, sent)
    )
    refusals: dict[str, dict[str, int]] = {}
    channels: dict[str, Totals] = {}
    minutes: Minutes = {}
    for channel, state, reason, changed_at, sent_at, count in rows:
        went = count if sent_at else 0
        report.totals.add(state, count, went)
        channels.setdefault(channel.value, Totals()).add(state, count, went)
        if state is DeliveryState.SUPPRESSED:
            by_channel = refusals.setdefault(reason or "", {})
            by_channel[channel.value] = by_channel.get(channel.value, 0) + count
        if sent_at:
            key = ("sent", _parse_minute(sent_at))
            minutes[key] = minutes.get(key, 0) + count
        if changed_at:
            key = (state.value, _parse_minute(changed_at))
            minutes[key] = minutes.get(key, 0) + count
    report.by_channel = {c: channels[c] for c in CHANNEL_ORDER if c in channels}
    report.refused = sorted(
        (
            Refused(
                reason=reason,
                words=words.reason_words(DeliveryState.SUPPRESSED, reason) or "no reason kept",
                by_channel=_ordered(counts),
            )
            for reason, counts in refusals.items()
        ),
        key=lambda r: (-r.count, r.reason),
    )
    return minutes


def _unsubscribed(
    session: Session,
    ids: Any,
    report: Report,
    *,
    campaign: Campaign,
    topic_key: str,
    left: Mapping[int, Collection[str]] | None,
) -> None:
    """People who unsubscribed because of the campaign (the rule is
    `hub.services.engagement_unsubscribes`'), each counted once overall and once per channel
    it reached them on; `left` when the caller has them already."""
    if left is None:
        left = unsubscribes.attributed(
            session, ids, topic_id=campaign.topic_id, topic_key=topic_key
        )
    for channel, count in unsubscribes.by_channel(left).items():
        report.by_channel.setdefault(channel, Totals()).unsubscribed += count
    report.totals.unsubscribed = len(left)
    report.reasons = reasons_of(session, left.keys(), topic_key=topic_key)


def reasons_of(session: Session, people: Collection[int], *, topic_key: str) -> list[LeftBecause]:
    """What the people who left said when asked why: each person's latest `refusal.reason`
    about the topic (or about everything, which the campaign's unsubscribe may have been),
    counted by answer, the most given first. Only people the campaign made leave are read,
    a chunk at a time, so the statement stays small whatever the audience."""
    latest: dict[int, str] = {}
    ids = sorted(people)
    for start in range(0, len(ids), 1000):
        rows = session.execute(
            select(ContactEvent.contact_id, ContactEvent.reason)
            .where(
                ContactEvent.contact_id.in_(ids[start : start + 1000]),
                ContactEvent.type == EventType.REFUSAL_REASON,
                (ContactEvent.topic_key == topic_key) | ContactEvent.topic_key.is_(None),
            )
            .order_by(ContactEvent.id)
        )
        for contact_id, reason in rows:
            latest[contact_id] = reason or RefusalWhy.OTHER.value
    counts: dict[str, int] = {}
    for reason in latest.values():
        counts[reason] = counts.get(reason, 0) + 1
    order = [w.value for w in RefusalWhy]
    return [
        LeftBecause(reason, refusal_words.ANSWERS.get(reason, reason), count)
        for reason, count in sorted(
            counts.items(), key=lambda kv: (-kv[1], order.index(kv[0]) if kv[0] in order else 99)
        )
    ]


def _waiting(session: Session, ids: Any, *, now: dt.datetime) -> list[Waiting]:
    """Deferred deliveries by reason, with the earliest and latest moment they go and the
    time zone of the person each belongs to (grouped by zone: a few rows per reason)."""
    until = func.coalesce(Delivery.not_before, Delivery.due_at)
    rows = session.execute(
        select(
            Delivery.reason,
            Delivery.channel,
            Contact.timezone,
            func.count(),
            func.min(until),
            func.max(until),
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.notification_id.in_(ids), Delivery.state == DeliveryState.DEFERRED)
        .group_by(Delivery.reason, Delivery.channel, Contact.timezone)
    )
    grouped: dict[str, dict[str, Any]] = {}
    for reason, channel, zone, count, first, last in rows:
        head = words.split(reason)[0] or "unknown"
        group = grouped.setdefault(head, {"channels": {}, "first": None, "last": None})
        group["channels"][channel.value] = group["channels"].get(channel.value, 0) + count
        if first is not None and (group["first"] is None or first < group["first"][0]):
            group["first"] = (first, zone)
        if last is not None and (group["last"] is None or last > group["last"][0]):
            group["last"] = (last, zone)
    waiting = []
    for reason, group in grouped.items():
        channels = _ordered(group["channels"])
        first, last = group["first"], group["last"]
        waiting.append(
            Waiting(
                reason=reason,
                by_channel=channels,
                first=first[0] if first else None,
                first_zone=first[1] if first else None,
                last=last[0] if last else None,
                last_zone=last[1] if last else None,
                sentence=words.waiting_sentence(reason, channels, first=first, last=last, now=now),
            )
        )
    return sorted(waiting, key=lambda w: -w.count)


def _failures(
    session: Session, ids: Any, *, after: int | None, limit: int
) -> tuple[list[Failure], int | None]:
    query = (
        select(
            Delivery.id,
            Delivery.notification_id,
            Contact.external_id,
            Delivery.channel,
            Delivery.state,
            Delivery.reason,
            Delivery.error_code,
            Delivery.error,
            Delivery.attempts,
            Delivery.updated_at,
        )
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.notification_id.in_(ids), Delivery.state.in_(FAILED))
        .order_by(Delivery.id)
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Delivery.id > after)
    rows = session.execute(query).all()
    found = [
        Failure(
            id=row.id,
            notification_id=row.notification_id,
            contact=row.external_id,
            channel=row.channel.value,
            state=row.state.value,
            reason=row.reason,
            words=words.reason_words(row.state, row.reason),
            error_code=row.error_code,
            error=row.error,
            attempts=row.attempts,
            at=row.updated_at,
        )
        for row in rows[:limit]
    ]
    return found, (found[-1].id if len(rows) > limit else None)


def step_for(span: dt.timedelta) -> int:
    """The bucket size in seconds: the smallest of STEPS that keeps to MAX_BUCKETS."""
    seconds = span.total_seconds()
    return next((s for s in STEPS if seconds / s <= MAX_BUCKETS), STEPS[-1])


def timeline(minutes: Minutes) -> Timeline | None:
    """Cumulative counts per bucket from counts per minute; None when nothing happened."""
    if not minutes:
        return None
    first = min(at for _, at in minutes)
    last = max(at for _, at in minutes)
    step = step_for(last - first)
    origin = int(first.timestamp()) // step * step  # whole hours, days: readable labels
    count = (int(last.timestamp()) - origin) // step + 1
    per_bucket = {name: [0] * count for name in CHARTED}
    for (name, at), n in minutes.items():
        per_bucket[name][(int(at.timestamp()) - origin) // step] += n
    series = {name: list(itertools.accumulate(counts)) for name, counts in per_bucket.items()}
    start = dt.datetime.fromtimestamp(origin, dt.UTC)
    ends = [start + dt.timedelta(seconds=step * (i + 1)) for i in range(count)]
    return Timeline(start=start, step=dt.timedelta(seconds=step), ends=ends, series=series)


def _minute(session: Session, column: Any) -> ColumnElement[str]:
    """A UTC time to its minute as text, `2026-12-07 08:05`, by the database: SQLite keeps
    times as text already (the first 16 characters), PostgreSQL as timestamps. The format
    is written into the statement (it is ours): PostgreSQL would not match the SELECT's
    expression to the GROUP BY's if each had its own parameter."""
    if session.get_bind().dialect.name == "postgresql":
        utc = func.timezone(literal_column("'UTC'"), column)
        return func.to_char(utc, literal_column("'YYYY-MM-DD HH24:MI'"))
    return func.substr(column, literal_column("1"), literal_column("16"))


def _parse_minute(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{text}:00").replace(tzinfo=dt.UTC)


def _ordered(counts: dict[str, int]) -> dict[str, int]:
    return {c: counts[c] for c in sorted(counts, key=_channel_rank)}


def _channel_rank(channel: str) -> int:
    return CHANNEL_ORDER.index(channel) if channel in CHANNEL_ORDER else len(CHANNEL_ORDER)
