"""The tables: who people are, what they subscribed to, what they refused, and what happened."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from hub.db.base import Base, Id, Json, UTCDateTime, str_enum, utcnow
from hub.domain import (
    ActorKind,
    AgentClass,
    Audience,
    CampaignState,
    Channel,
    ContactKind,
    DeliveryState,
    EngagementKind,
    EventMessageState,
    EventType,
    Frequency,
    ImportState,
    MachineReason,
    NotificationState,
    SessionRevoked,
    StaffRole,
    SubscriptionStatus,
    SuppressionReason,
    TopicCategory,
)


def new_link_key() -> str:
    return secrets.token_urlsafe(12)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    external_id: Mapped[str] = mapped_column(String(255), unique=True)
    kind: Mapped[ContactKind] = mapped_column(str_enum(ContactKind))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), index=True)
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    locale: Mapped[str | None] = mapped_column(String(35))
    timezone: Mapped[str] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(Json)
    # Random, never shared and never reused: every self-service link carries it beside the
    # row id, which SQLite may give again after an erasure.
    link_key: Mapped[str] = mapped_column(
        String(24), index=True, unique=True, default=new_link_key, server_default=""
    )
    # The employee who looks after this client; their erasure leaves the client unowned.
    owner_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Team(Base):
    """Employees and clients belong to teams: an employee may hear of their teams' clients."""

    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TeamMember(Base):
    __tablename__ = "team_members"

    team_id: Mapped[int] = mapped_column(
        Id, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    added_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactPreferences(Base):
    __tablename__ = "contact_preferences"

    contact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_channels: Mapped[list[str]] = mapped_column(Json, default=list)
    quiet_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_end: Mapped[dt.time | None] = mapped_column(Time)
    unsubscribed_all: Mapped[bool] = mapped_column(Boolean, default=False)
    digest_time: Mapped[dt.time | None] = mapped_column(Time)  # local; None: the hub's
    digest_weekday: Mapped[int | None]  # 0 = Monday; None: the hub's
    # The person asked not to be tracked: no pixel, no rewritten links, whatever the topic.
    tracking_off: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Topic(Base):
    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    audience: Mapped[Audience] = mapped_column(str_enum(Audience))
    allowed_channels: Mapped[list[str]] = mapped_column(Json)
    default_channels: Mapped[list[str]] = mapped_column(Json)
    allowed_frequencies: Mapped[list[str]] = mapped_column(Json)
    public: Mapped[bool] = mapped_column(Boolean, default=True)
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    category: Mapped[TopicCategory] = mapped_column(
        str_enum(TopicCategory), default=TopicCategory.MARKETING, server_default="marketing"
    )
    bypass_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
    # Frequency caps for this topic's messages (None: the hub's HUB_FREQUENCY_CAP_*);
    # "defer" holds what is over them, "drop" refuses it.
    cap_per_day: Mapped[int | None]
    cap_per_week: Mapped[int | None]
    cap_action: Mapped[str] = mapped_column(String(8), default="defer")
    # Opens and clicks of its e-mail are tracked (pixel, rewritten links); SMS links too
    # with `track_sms`. New topics: on for marketing, off for transactional.
    tracking: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    track_sms: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (
        UniqueConstraint("contact_id", "topic_id"),
        Index("ix_subscriptions_topic_status", "topic_id", "status", "contact_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    topic_id: Mapped[int] = mapped_column(Id, ForeignKey("topics.id", ondelete="RESTRICT"))
    status: Mapped[SubscriptionStatus] = mapped_column(str_enum(SubscriptionStatus))
    channels: Mapped[list[str]] = mapped_column(Json)
    frequency: Mapped[Frequency] = mapped_column(str_enum(Frequency))
    # Consent evidence: how, when and by whom the current status was given.
    consent_source: Mapped[str] = mapped_column(String(64))
    consent_actor: Mapped[str] = mapped_column(String(255))
    consent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Topics fed by clients' events: whose clients (`mine`, `teams`, `all`); else None.
    scope: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Suppression(Base):
    """An address not to use on a channel. Outlives the contact: erasure keeps the hash."""

    __tablename__ = "suppressions"
    __table_args__ = (UniqueConstraint("channel", "address_hash"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    address: Mapped[str | None] = mapped_column(String(2048))  # None once erased
    address_hash: Mapped[str] = mapped_column(String(64))
    reason: Mapped[SuppressionReason] = mapped_column(str_enum(SuppressionReason))
    source: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(255))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ContactEvent(Base):
    """The timeline. Append-only: a database trigger refuses UPDATE (RELIABILITY 15)."""

    __tablename__ = "contact_events"
    __table_args__ = (Index("ix_contact_events_contact_id_id", "contact_id", "id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    type: Mapped[EventType] = mapped_column(str_enum(EventType))
    actor_kind: Mapped[ActorKind] = mapped_column(str_enum(ActorKind))
    actor: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(64))
    topic_key: Mapped[str | None] = mapped_column(String(100))
    channel: Mapped[Channel | None] = mapped_column(str_enum(Channel))
    # {"field": {"before": x, "after": y}} for changes; free details otherwise.
    changes: Mapped[dict[str, Any] | None] = mapped_column(Json)
    reason: Mapped[str | None] = mapped_column(String(255))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))


class Erasure(Base):
    """Proof that an erasure happened, without the personal data it removed."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64), index=True)
    erased_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    actor_kind: Mapped[ActorKind] = mapped_column(str_enum(ActorKind))
    actor: Mapped[str] = mapped_column(String(255))
    suppressions_added: Mapped[int]


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the secret
    scopes: Mapped[list[str]] = mapped_column(Json)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # The user's own employee record: whose clients are "my clients" in the console.
    contact_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffSession(Base):
    """A signed-in browser. Its cookie holds a random token and only the token's SHA-256 is
    kept here, so a copy of the table opens no console. Every console request reads the row:
    revoking it (sign-out, a password change, disabling the user) ends the session at once."""

    __tablename__ = "staff_sessions"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(
        Id, ForeignKey("staff_users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[SessionRevoked | None] = mapped_column(str_enum(SessionRevoked))
    ip: Mapped[str | None] = mapped_column(String(45))  # where it signed in from
    user_agent: Mapped[str | None] = mapped_column(String(300))


class Template(Base):
    """Per-channel parts in per-locale variants: {"": {...}, "ru": {...}}; see `templates.Parts`."""

    __tablename__ = "templates"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    variants: Mapped[dict[str, Any]] = mapped_column(Json)
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Notification(Base):
    """One request to tell a topic's subscribers (or named contacts) something.

    The template is snapshotted: editing it later does not change a message half sent.
    `cursor` is the last contact id fanned out, so a crashed fan-out resumes where it stopped.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_topic_id_id", "topic_id", "id"),
        Index("ix_notifications_source_id", "source", "id"),
        Index("ix_notifications_created_at", "created_at"),
        Index("ix_notifications_state_due_at", "state", "due_at"),
        Index("ix_notifications_state_id", "state", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    topic_id: Mapped[int] = mapped_column(Id, ForeignKey("topics.id", ondelete="RESTRICT"))
    template_key: Mapped[str | None] = mapped_column(String(100))
    template_version: Mapped[int | None]  # of the stored template its parts were copied from
    # Rendered as this contact (their name, language, attributes), sent to the recipients: a
    # campaign's test. No foreign key: erasing the contact leaves the notification alone.
    render_as_id: Mapped[int | None] = mapped_column(Id)
    variants: Mapped[dict[str, Any]] = mapped_column(Json)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    recipients: Mapped[list[int] | None] = mapped_column(Json)  # contact ids; None: subscribers
    channels: Mapped[list[str] | None] = mapped_column(Json)  # None: as each person chose
    source: Mapped[str] = mapped_column(String(255))
    state: Mapped[NotificationState] = mapped_column(str_enum(NotificationState))
    # A campaign's: who of the topic's audience (see hub.dispatch.segment), when in each
    # person's zone (naive ISO date-time), and how fast ({"email": per minute}).
    campaign_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("campaigns.id", ondelete="SET NULL"), index=True
    )
    segment: Mapped[dict[str, Any] | None] = mapped_column(Json)
    local_at: Mapped[str | None] = mapped_column(String(19))
    throttle: Mapped[dict[str, Any] | None] = mapped_column(Json)
    held: Mapped[bool] = mapped_column(Boolean, default=False)  # paused: fan-out waits
    # [{"channel": "email", "after_seconds": 0}, {"channel": "sms", "after_seconds": 1800,
    # "unless": "opened"}]: a later step goes unless an earlier one did what its `unless` asks.
    escalation: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    tracking: Mapped[bool | None] = mapped_column(Boolean)  # None: as its topic says
    arm: Mapped[str | None] = mapped_column(String(16))  # its A/B variant's name
    # The client an employee's notification tells of (a client topic's): erasing the client
    # blanks what it says of them.
    about_contact_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="SET NULL"), index=True
    )
    cursor: Mapped[int] = mapped_column(Id, default=0)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)  # fan-out lease, or send_at
    # `scheduled` until then; the sweeper starts the fan-out once it has passed
    send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    fanned_out_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class IdempotencyKey(Base):
    """The first answer to a POST, replayed for the same key (RELIABILITY 8)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("owner", "key"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))  # "key:<api key id>"
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None]  # None while the first request runs
    response: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Delivery(Base):
    """Notification x contact x channel. The database, not the queue, is the truth.

    `due_at` is when the sweeper looks at the row again: the queue lease of a `queued` row,
    the send lease of a `sending` one, the end of a deferral. `not_before` holds back a retry.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("notification_id", "contact_id", "channel"),
        Index("ix_deliveries_state_due_at", "state", "due_at"),
        Index("ix_deliveries_state_channel_due_at", "state", "channel", "due_at"),
        Index("ix_deliveries_notification_id_id", "notification_id", "id"),
        Index("ix_deliveries_contact_id", "contact_id"),
        Index("ix_deliveries_provider_id", "provider_id"),  # status callbacks find rows by it
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    notification_id: Mapped[int] = mapped_column(
        Id, ForeignKey("notifications.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(Id, ForeignKey("contacts.id", ondelete="CASCADE"))
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    state: Mapped[DeliveryState] = mapped_column(str_enum(DeliveryState))
    reason: Mapped[str | None] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(2048))
    attempts: Mapped[int] = mapped_column(default=0)
    step: Mapped[int] = mapped_column(default=0)  # its place in an escalation chain
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ambiguous: Mapped[bool] = mapped_column(Boolean, default=False)
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_id: Mapped[str | None] = mapped_column(String(255))
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class DeadLetter(Base):
    """A queue message that kept failing, parked where staff can see and replay it."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    actor: Mapped[str] = mapped_column(String(100))
    args: Mapped[list[Any]] = mapped_column(Json)
    error: Mapped[str] = mapped_column(Text)
    failures: Mapped[int]
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    replayed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Capture(Base):
    """What the development sink received instead of a real provider."""

    __tablename__ = "captures"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int | None] = mapped_column(Id, index=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    to: Mapped[str] = mapped_column(String(2048))
    subject: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str | None] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    body: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventEndpoint(Base):
    """Another service's URL that receives timeline events (delivered, bounced, STOP, ...).

    `secret` signs every request (Standard Webhooks). It is kept as given, since signing
    needs it; the API shows it once, when the endpoint is created.
    """

    __tablename__ = "event_endpoints"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    description: Mapped[str | None] = mapped_column(Text)
    event_types: Mapped[list[str]] = mapped_column(Json)
    secret: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClientEventMessage(Base):
    """One client event for the employees who hear of it (`ClientTopic`): the outbox row,
    written in the event's own transaction and deleted in the one that turns it into their
    notification, so an event is told once, or not at all if it never happened."""

    __tablename__ = "client_event_messages"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    contact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    topic_key: Mapped[str] = mapped_column(String(100))
    event: Mapped[dict[str, Any]] = mapped_column(Json)  # the timeline row, as JSON
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventMessage(Base):
    """One event for one endpoint: the outbox row, written in the event's own transaction.

    The payload is a snapshot taken then. `contact_id` ties it to the person, so erasing
    them removes what was not yet sent (and the log of what was).
    """

    __tablename__ = "event_messages"
    __table_args__ = (
        Index("ix_event_messages_state_due_at", "state", "due_at"),
        Index("ix_event_messages_endpoint_id_id", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(
        Id, ForeignKey("event_endpoints.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    state: Mapped[EventMessageState] = mapped_column(str_enum(EventMessageState))
    attempts: Mapped[int] = mapped_column(default=0)
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class EventAttempt(Base):
    """The delivery log: one row per request made for an event message, and its answer."""

    __tablename__ = "event_attempts"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(
        Id, ForeignKey("event_messages.id", ondelete="CASCADE"), index=True
    )
    attempted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]


class InboundReceipt(Base):
    """A provider message already acted on, by its id: a replayed "START" or a retried
    webhook is acknowledged and changes nothing (signatures alone cannot tell a replay)."""

    __tablename__ = "inbound_receipts"

    provider_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class EarlyCallback(Base):
    """A status callback for a provider id no delivery holds yet, as the provider's reader
    put it in Hub's words (`hub.channels.base.StatusUpdate`).

    Twilio may report "delivered" before the worker that sent the message has recorded its
    SID (a paced batch records at its end). The callback waits here and is applied when the
    SID is recorded; one that matches nothing for a day is dropped.
    """

    __tablename__ = "early_callbacks"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    provider_id: Mapped[str] = mapped_column(String(255), index=True)
    provider: Mapped[str | None] = mapped_column(String(32))  # who called back ("twilio")
    state: Mapped[DeliveryState | None] = mapped_column(str_enum(DeliveryState))
    status: Mapped[str] = mapped_column(String(32))  # the provider's own word
    reason: Mapped[str | None] = mapped_column(String(64))  # as the delivery will keep it
    error_code: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(String(255))
    answered_by: Mapped[str | None] = mapped_column(String(32))
    suppress: Mapped[SuppressionReason | None] = mapped_column(str_enum(SuppressionReason))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class Campaign(Base):
    """A message to a topic's audience (or a segment of it), sent once, at a time, at a local
    time in each person's zone, or on a recurring rule; each occurrence is a notification."""

    __tablename__ = "campaigns"
    __table_args__ = (Index("ix_campaigns_state_next_run_at", "state", "next_run_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    topic_id: Mapped[int] = mapped_column(Id, ForeignKey("topics.id", ondelete="RESTRICT"))
    template_key: Mapped[str] = mapped_column(String(100))
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    segment: Mapped[dict[str, Any] | None] = mapped_column(Json)
    segment_key: Mapped[str | None] = mapped_column(String(100))  # the saved one it copies
    channels: Mapped[list[str] | None] = mapped_column(Json)
    schedule: Mapped[dict[str, Any]] = mapped_column(Json)
    throttle: Mapped[dict[str, Any] | None] = mapped_column(Json)
    state: Mapped[CampaignState] = mapped_column(str_enum(CampaignState))
    next_run_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    tracking: Mapped[bool | None] = mapped_column(Boolean)  # None: as its topic says
    # A/B: [{"name": "A", "template": key, "share": 50}, ...] (2-4), and how the test runs
    # ({"mode": "split" | "winner", "sample": %, "wait_minutes": n, "metric": "click" | "open",
    # then "winner", "decided_at", "rates", "why", "rest_notification"}); None: one template.
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(Json)
    ab: Mapped[dict[str, Any] | None] = mapped_column(Json)
    created_by: Mapped[str] = mapped_column(String(255))
    approved_by: Mapped[str | None] = mapped_column(String(255))  # with HUB_CAMPAIGN_APPROVAL
    approved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignRun(Base):
    """One occurrence of a campaign, dispatched once: the unique key is what makes two
    schedulers (or a retried tick) create one notification, not two."""

    __tablename__ = "campaign_runs"
    __table_args__ = (UniqueConstraint("campaign_id", "occurrence_at"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(Id, ForeignKey("campaigns.id", ondelete="CASCADE"))
    occurrence_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    notification_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("notifications.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Installation(Base):
    """This database's own random token (one row): what makes its Message-IDs its own."""

    __tablename__ = "installation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    token: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class UnmatchedReport(Base):
    """A bounce or complaint that named no delivery of this installation's to that address:
    kept for staff to read, acted on never."""

    __tablename__ = "unmatched_reports"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    kind: Mapped[str] = mapped_column(String(32))  # hard_bounce, soft_bounce, complaint
    why: Mapped[str] = mapped_column(String(255))
    message_id: Mapped[str | None] = mapped_column(String(998))
    recipients: Mapped[str | None] = mapped_column(String(2048))
    status: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)


class BounceReceipt(Base):
    """A bounce or complaint Hub acted on, once: a second copy of the same report finds its
    row and changes nothing (same delivery and kind; for soft bounces and blocks, also the
    same status: hard bounces and complaints keep an empty status, whatever reported them).
    A soft bounce that counted towards suspending the address holds the day it counted on,
    once per address and day."""

    __tablename__ = "bounce_receipts"
    __table_args__ = (
        UniqueConstraint("delivery_id", "kind", "status", name="uq_bounce_receipts_delivery_id"),
        UniqueConstraint("address_hash", "soft_day", name="uq_bounce_receipts_address_hash"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(Id, ForeignKey("deliveries.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # hub.channels.email.reports.Kind
    status: Mapped[str] = mapped_column(String(32))  # "" when the report gave none
    address_hash: Mapped[str] = mapped_column(String(64))  # as the suppression list keeps it
    soft_day: Mapped[dt.date | None] = mapped_column(Date)  # a counted soft bounce's UTC day
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class Segment(Base):
    """A saved, named condition tree over contacts (see hub.dispatch.segment): campaigns and
    the API use it by key; a campaign keeps a copy of the conditions it was sent with."""

    __tablename__ = "segments"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    conditions: Mapped[dict[str, Any]] = mapped_column(Json)
    created_by: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class TemplateVersion(Base):
    """Every save of a template, kept: its history, a diff between two, and a restore."""

    __tablename__ = "template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    template_id: Mapped[int] = mapped_column(Id, ForeignKey("templates.id", ondelete="CASCADE"))
    version: Mapped[int]
    description: Mapped[str | None] = mapped_column(Text)
    variants: Mapped[dict[str, Any]] = mapped_column(Json)
    saved_by: Mapped[str] = mapped_column(String(255))
    saved_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuditEntry(Base):
    """A staff or API key action on configuration: who, when, what, before and after."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[ActorKind] = mapped_column(str_enum(ActorKind))
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))  # created, updated, deleted, revoked...
    resource: Mapped[str] = mapped_column(String(32))  # template, topic, segment, campaign...
    resource_key: Mapped[str] = mapped_column(String(255))
    before: Mapped[dict[str, Any] | None] = mapped_column(Json)
    after: Mapped[dict[str, Any] | None] = mapped_column(Json)


class ImportJob(Base):
    """A contact import run in the background, for the console's progress bar; its rows'
    errors are kept (up to a limit) to download."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    created_by: Mapped[str] = mapped_column(String(255))
    filename: Mapped[str | None] = mapped_column(String(255))
    format: Mapped[str] = mapped_column(String(16))  # csv, ndjson
    state: Mapped[ImportState] = mapped_column(str_enum(ImportState))
    bytes_total: Mapped[int | None]
    bytes_read: Mapped[int] = mapped_column(default=0)
    rows_read: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    subscribed: Mapped[int] = mapped_column(default=0)
    options: Mapped[dict[str, Any]] = mapped_column(Json)  # subscribe to topic, channels...
    errors: Mapped[str | None] = mapped_column(Text)  # CSV: line, field, message
    error: Mapped[str | None] = mapped_column(Text)  # why the whole import failed
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # its last batch
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Engagement(Base):
    """An open or a click of one delivery, person or machine: the first of each kind, link
    and flag is kept (a later repeat adds nothing a report counts). Erased with the person."""

    __tablename__ = "engagements"
    __table_args__ = (
        UniqueConstraint("delivery_id", "kind", "link_index", "machine"),
        Index("ix_engagements_notification_id_kind", "notification_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        Id, ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    notification_id: Mapped[int] = mapped_column(
        Id, ForeignKey("notifications.id", ondelete="CASCADE")
    )
    contact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[EngagementKind] = mapped_column(str_enum(EngagementKind))
    link_index: Mapped[int] = mapped_column(default=0)  # 0 for an open; links count from 1
    url: Mapped[str | None] = mapped_column(String(2048))  # the link's target, for a click
    machine: Mapped[bool] = mapped_column(Boolean, default=False)
    machine_reason: Mapped[MachineReason | None] = mapped_column(str_enum(MachineReason))
    agent: Mapped[AgentClass] = mapped_column(str_enum(AgentClass))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
