"""The tables: who people are, what they subscribed to, what they refused, and what happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from hub.db.base import Base, Id, Json, UTCDateTime, str_enum, utcnow
from hub.domain import (
    ActorKind,
    Audience,
    Channel,
    ContactKind,
    EventType,
    Frequency,
    StaffRole,
    SubscriptionStatus,
    SuppressionReason,
)


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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ContactPreferences(Base):
    __tablename__ = "contact_preferences"

    contact_id: Mapped[int] = mapped_column(
        Id, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    blocked_channels: Mapped[list[str]] = mapped_column(Json, default=list)
    quiet_start: Mapped[dt.time | None] = mapped_column(Time)
    quiet_end: Mapped[dt.time | None] = mapped_column(Time)
    unsubscribed_all: Mapped[bool] = mapped_column(Boolean, default=False)
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
    bypass_quiet_hours: Mapped[bool] = mapped_column(Boolean, default=False)
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
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
