"""The models the client sends and reads: the server's own schemas, re-exported."""

from __future__ import annotations

from hub.schemas.base import Page
from hub.schemas.contacts import ContactIn, ContactOut, ErasureOut
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
from hub.schemas.timeline import EventOut

# The names the client has always used for them
TimelineEvent = EventOut
Erasure = ErasureOut


__all__ = [
    "BatchItem",
    "BatchItemResult",
    "BatchOut",
    "ContactIn",
    "ContactOut",
    "DeliveryOut",
    "Erasure",
    "ErasureOut",
    "EscalationStep",
    "EventOut",
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
