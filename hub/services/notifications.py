"""Accept a notification (validated, template snapshotted, committed) and report on it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import bindparam, func, insert, select
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import Contact, Delivery, Notification, Template, Topic
from hub.domain import ActorKind, Channel, DeliveryState, EventType, NotificationState
from hub.schemas.notifications import MAX_SCHEDULE_AHEAD, DeliveryOut, NotificationIn, Recipient
from hub.services import inline_recipients, templates, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField, NotFound
from hub.templates.isolation import RenderProcesses

_LOOKUP_CHUNK = 1000
# A new notification's fan-out is enqueued after the commit; if that enqueue is lost, the
# sweeper starts the fan-out this long after creation.
FAN_OUT_FALLBACK = dt.timedelta(seconds=30)


# Built once against the tables: accept runs on every POST, and building and caching an
# ORM statement per call cost more than executing it.
_TOPICS = Base.metadata.tables[Topic.__tablename__]
_CONTACTS = Base.metadata.tables[Contact.__tablename__]
_NOTIFICATIONS = Base.metadata.tables[Notification.__tablename__]
_TOPIC = select(_TOPICS.c.id, _TOPICS.c.key, _TOPICS.c.allowed_channels).where(
    _TOPICS.c.key == bindparam("topic")
)
_CONTACT_IDS = select(_CONTACTS.c.external_id, _CONTACTS.c.id).where(
    _CONTACTS.c.external_id.in_(bindparam("external_ids", expanding=True))
)
_INSERT = insert(_NOTIFICATIONS).returning(_NOTIFICATIONS.c.id)
# Who created or changed an inline recipient when no caller is named (Hub's own mail).
SYSTEM = Actor(ActorKind.SYSTEM, "system", "notify")


@dataclass(frozen=True, slots=True)
class Occurrence:
    """What a campaign adds to the notification of one of its occurrences: whose it is, who of
    the topic's audience (see hub.dispatch.segment), when in each person's zone, how fast."""

    campaign_id: int
    segment: dict[str, Any] | None
    local_at: str | None
    throttle: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Accepted:
    id: int
    state: NotificationState
    created_at: dt.datetime
    send_at: dt.datetime | None = None


def accept(
    session: Session,
    body: NotificationIn,
    *,
    source: str,
    processes: RenderProcesses,
    render_as: int | None = None,
    actor: Actor = SYSTEM,
    allow_private_webhooks: bool = False,
    may_change_contacts: bool = True,
) -> Accepted:
    """Validate against the database and insert the notification; the caller commits.

    Core statements rather than the ORM's unit of work: this runs once per API request, and
    the flush's bookkeeping cost more than the insert itself. Recipients named inline are
    created or changed (on their timelines, by `actor`) in the same transaction; a scheduled
    notification is on each named recipient's timeline.
    """
    topic = session.execute(_TOPIC, {"topic": body.topic}).first()
    if topic is None:
        raise InvalidField("topic", f"no topic {body.topic!r}")
    template = None
    if body.template is not None:
        template = session.scalar(select(Template).where(Template.key == body.template))
    now = utcnow()
    plan = check(body, topic=topic, template=template, processes=processes, now=now)
    send_at = plan.send_at
    recipients = (
        _recipient_ids(
            session,
            body.recipients,
            actor=actor,
            allow_private_webhooks=allow_private_webhooks,
            may_change=may_change_contacts,
        )
        if body.recipients
        else None
    )
    inserted = create(
        session,
        topic_id=topic.id,
        template_key=body.template,
        template_version=plan.version,
        variants=plan.variants,
        data=body.data,
        source=source,
        now=now,
        render_as=render_as,
        send_at=send_at,
        recipients=recipients,
        channels=plan.channels,
        escalation=plan.escalation,
    )
    if send_at is not None and recipients:
        timeline.record_many(
            session,
            scheduled_events(
                recipients,
                notification_id=inserted,
                send_at=send_at,
                topic_key=topic.key,
                actor=actor,
                at=now,
            ),
        )
    state = NotificationState.SCHEDULED if send_at else NotificationState.ACCEPTED
    return Accepted(inserted, state, now, send_at)


class TopicRow(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def key(self) -> str: ...
    @property
    def allowed_channels(self) -> list[str]: ...


class TemplateRow(Protocol):
    @property
    def variants(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...


@dataclass(frozen=True, slots=True)
class Plan:
    """What a notification's body comes to once checked against its topic and template."""

    variants: dict[str, Any]
    version: int | None
    send_at: dt.datetime | None  # None: at once (a time already past too)
    channels: list[str] | None
    escalation: list[dict[str, Any]] | None


def check(
    body: NotificationIn,
    *,
    topic: TopicRow,
    template: TemplateRow | None,
    processes: RenderProcesses,
    now: dt.datetime,
) -> Plan:
    """Check the body against its topic and its stored `template` (None: not found, or
    inline content). A single POST and each item of a batch go through here.

    Raises:
        InvalidField: a channel the topic does not allow, no such template, a template that
            does not compile, a `send_at` too far ahead.
    """
    chosen = body.channels or [step.channel for step in body.escalation or []]
    if chosen:
        forbidden = sorted(set(chosen) - {Channel(c) for c in topic.allowed_channels})
        if forbidden:
            raise InvalidField(
                "escalation" if body.escalation else "channels",
                f"topic {topic.key!r} does not allow {', '.join(forbidden)}",
            )
    if body.template is not None:
        if template is None:
            raise InvalidField("template", f"no template {body.template!r}")
        variants, version = template.variants, template.version
    else:
        assert body.content is not None
        variants, version = templates.variants_of(body.content), None
        templates.check(processes, "inline", variants, "content", data=body.data)
    send_at = body.send_at if body.send_at is not None and body.send_at > now else None
    if send_at is not None and send_at - now > MAX_SCHEDULE_AHEAD:
        raise InvalidField("send_at", "at most 366 days ahead")
    return Plan(
        variants=variants,
        version=version,
        send_at=send_at,
        channels=[c.value for c in body.channels] if body.channels else None,
        escalation=[
            {
                "channel": step.channel.value,
                "after_seconds": round(step.after_minutes * 60, 3),
                "unless": step.unless.value,
            }
            for step in body.escalation
        ]
        if body.escalation
        else None,
    )


def _recipient_ids(
    session: Session,
    recipients: list[Recipient],
    *,
    actor: Actor,
    allow_private_webhooks: bool,
    may_change: bool,
) -> list[int]:
    if inline_recipients.is_plain(recipients):  # the common case: one scan, no upsert
        return contact_ids(session, recipients)  # type: ignore[arg-type]
    inline_recipients.check(recipients, allow_private_webhooks=allow_private_webhooks)
    wanted: dict[str, dict[str, Any]] = {}
    inline_recipients.combine(wanted, recipients)
    named = [r for r in recipients if isinstance(r, str) and r not in wanted]
    found = contact_ids(session, named) if named else []
    upserted = inline_recipients.upsert(session, wanted, actor, may_change=may_change)
    return sorted(set(found) | set(upserted.values()))


def scheduled_events(
    contact_ids: list[int],
    *,
    notification_id: int,
    send_at: dt.datetime,
    topic_key: str,
    actor: Actor,
    at: dt.datetime,
) -> list[dict[str, Any]]:
    """`notification.scheduled` on each named recipient's timeline: what is coming, when."""
    changes = {"notification": notification_id, "send_at": send_at.isoformat()}
    return [
        timeline.event_row(
            contact_id=contact_id,
            type=EventType.NOTIFICATION_SCHEDULED,
            actor=actor,
            at=at,
            changes=changes,
            topic_key=topic_key,
        )
        for contact_id in contact_ids
    ]


def create(
    session: Session,
    *,
    topic_id: int,
    template_key: str | None,
    variants: dict[str, Any],
    data: dict[str, Any],
    source: str,
    now: dt.datetime,
    template_version: int | None = None,
    render_as: int | None = None,
    recipients: list[int] | None = None,
    channels: list[str] | None = None,
    escalation: list[dict[str, Any]] | None = None,
    campaign: Occurrence | None = None,
    send_at: dt.datetime | None = None,
    about: int | None = None,
) -> int:
    """Insert a notification waiting for its fan-out; its id. The only way one is created.

    The caller commits, then enqueues the fan-out; `due_at` is the sweeper's fallback should
    that enqueue be lost. `recipients` are contact ids (None: the topic's subscribers),
    `channels` override each person's choice; `render_as` (a contact id) renders every
    delivery as that person would get it (a campaign's test); `about` is the client an
    employee's notification tells of. With `send_at` it is
    `scheduled`, due then; the sweeper starts it (see hub.services.notification_schedule).
    """
    values = row(
        topic_id=topic_id,
        template_key=template_key,
        variants=variants,
        data=data,
        source=source,
        now=now,
        template_version=template_version,
        render_as=render_as,
        recipients=recipients,
        channels=channels,
        escalation=escalation,
        send_at=send_at,
    )
    if about is not None:
        values["about_contact_id"] = about
    if campaign is not None:
        values |= {
            "campaign_id": campaign.campaign_id,
            "segment": campaign.segment,
            "local_at": campaign.local_at,
            "throttle": campaign.throttle,
        }
    inserted: int = session.execute(_INSERT, values).scalar_one()
    return inserted


def row(
    *,
    topic_id: int,
    template_key: str | None,
    variants: dict[str, Any],
    data: dict[str, Any],
    source: str,
    now: dt.datetime,
    template_version: int | None,
    render_as: int | None,
    recipients: list[int] | None,
    channels: list[str] | None,
    escalation: list[dict[str, Any]] | None,
    send_at: dt.datetime | None,
) -> dict[str, Any]:
    """The notifications row `create` inserts (a batch inserts many in one statement)."""
    return {
        "topic_id": topic_id,
        "template_key": template_key,
        "template_version": template_version,
        "render_as_id": render_as,
        "variants": variants,
        "data": data,
        "recipients": recipients,
        "channels": channels,
        "escalation": escalation,
        "source": source,
        "state": NotificationState.SCHEDULED if send_at else NotificationState.ACCEPTED,
        "cursor": 0,
        "held": False,
        "due_at": send_at or now + FAN_OUT_FALLBACK,
        "send_at": send_at,
        "created_at": now,
    }


def contact_ids(session: Session, external_ids: list[str]) -> list[int]:
    """The contacts' ids, in id order.

    Raises:
        InvalidField: `recipients`, naming (up to ten of) those who are not contacts.
    """
    found = lookup_ids(session, external_ids)
    wanted = list(dict.fromkeys(external_ids))
    missing = [e for e in wanted if e not in found]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:10])
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        raise InvalidField("recipients", f"no contacts {shown}{more}")
    return sorted(found.values())


def lookup_ids(session: Session, external_ids: Iterable[str]) -> dict[str, int]:
    """External id -> contact id of those that exist, a thousand to a query."""
    wanted = list(dict.fromkeys(external_ids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), _LOOKUP_CHUNK):
        chunk = wanted[start : start + _LOOKUP_CHUNK]
        rows = session.execute(_CONTACT_IDS, {"external_ids": chunk})
        found.update({row.external_id: row.id for row in rows})
    return found


def get(session: Session, notification_id: int) -> Notification:
    notification = session.get(Notification, notification_id)
    if notification is None:
        raise NotFound(f"no notification {notification_id}")
    return notification


def topic_key(session: Session, notification_id: int) -> str | None:
    """The key of the topic a notification is about, for events recorded after the send."""
    return session.scalar(
        select(Topic.key)
        .join(Notification, Notification.topic_id == Topic.id)
        .where(Notification.id == notification_id)
    )


def counts(session: Session, notification_id: int) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(Delivery.channel, Delivery.state, func.count())
        .where(Delivery.notification_id == notification_id)
        .group_by(Delivery.channel, Delivery.state)
    )
    by_channel: dict[str, dict[str, int]] = {}
    for channel, state, count in rows:
        by_channel.setdefault(channel.value, {})[state.value] = count
    return by_channel


def deliveries(
    session: Session,
    notification_id: int,
    *,
    after_id: int | None,
    limit: int,
    state: DeliveryState | None = None,
    channel: Channel | None = None,
) -> list[DeliveryOut]:
    query = (
        select(Delivery, Contact.external_id)
        .join(Contact, Contact.id == Delivery.contact_id)
        .where(Delivery.notification_id == notification_id)
    )
    if after_id is not None:
        query = query.where(Delivery.id > after_id)
    if state is not None:
        query = query.where(Delivery.state == state)
    if channel is not None:
        query = query.where(Delivery.channel == channel)
    fields = [name for name in DeliveryOut.model_fields if name != "contact"]
    return [
        DeliveryOut(contact=external_id, **{name: getattr(delivery, name) for name in fields})
        for delivery, external_id in session.execute(query.order_by(Delivery.id).limit(limit))
    ]
