"""The models the client sends and reads: the server's own schemas, plus the two the API still
defines beside its routes (mirrored here until they move into hub.schemas)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import AliasChoices, BaseModel, Field

from hub.domain import ActorKind, Channel, EventType
from hub.schemas.base import Out, Page
from hub.schemas.contacts import ContactIn, ContactOut
from hub.schemas.notification_list import NotificationCancelled, NotificationSummary
from hub.schemas.notifications import (
    BatchItem,
    BatchItemResult,
    BatchOut,
    DeliveryOut,
    EscalationStep,
    NotificationAccepted,
    NotificationIn,
    NotificationOut,
    RecipientIn,
)
from hub.schemas.subscriptions import SubscriptionIn, SubscriptionOut


class TimelineEvent(Out):
    """One entry of a contact's timeline (the API's `EventOut`)."""

    id: int = Field(description="The event's id; the timeline is newest first.")
    occurred_at: dt.datetime = Field(description="When it happened (UTC).")
    type: EventType = Field(description="What happened, e.g. `delivery.sent`.")
    actor_kind: ActorKind = Field(description="Who did it: a person, staff, an API key, Hub.")
    actor: str = Field(description="Their name: the API key's, a staff e-mail, `system`.")
    source: str = Field(description="Through what: api, console, self-service, import, ...")
    topic: str | None = Field(
        None,
        validation_alias=AliasChoices("topic_key", "topic"),
        description="The topic it concerns, if any.",
    )
    channel: Channel | None = Field(description="The channel it concerns, if any.")
    changes: dict[str, Any] | None = Field(description="Before and after, for changes.")
    reason: str | None = Field(description="Why, in words (a refusal's reason, an error).")
    ip: str | None = Field(description="The address a person acted from, if recorded.")
    user_agent: str | None = Field(description="The browser a person acted from, if recorded.")


class Erasure(BaseModel):
    """What erasing a contact did (the API's `ErasureOut`)."""

    external_id: str = Field(description="The erased contact's external id.")
    erased_at: str = Field(description="When (ISO 8601, UTC).")
    suppressions_added: int = Field(
        description="Address hashes kept so that a re-import cannot make them contactable."
    )


__all__ = [
    "BatchItem",
    "BatchItemResult",
    "BatchOut",
    "ContactIn",
    "ContactOut",
    "DeliveryOut",
    "Erasure",
    "EscalationStep",
    "NotificationAccepted",
    "NotificationCancelled",
    "NotificationIn",
    "NotificationOut",
    "NotificationSummary",
    "Page",
    "RecipientIn",
    "SubscriptionIn",
    "SubscriptionOut",
    "TimelineEvent",
]
