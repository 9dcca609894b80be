"""Hub's Python client: `Hub` and `AsyncHub` over httpx, the server's own schemas as models,
errors as exceptions, retries, paging, and event webhook verification.

It may import hub.schemas, hub.domain, hub.fields (and what they import) and httpx; never
anything server-side (hub.db, hub.services, hub.api, SQLAlchemy), so a service can use it
without running Hub.
"""

from hub.client._async import AsyncHub
from hub.client._retry import RetryPolicy
from hub.client._sync import Hub
from hub.client.errors import (
    AuthenticationError,
    Conflict,
    FieldError,
    HubError,
    NetworkError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
    ValidationError,
)
from hub.client.models import (
    BatchItem,
    BatchItemResult,
    BatchOut,
    ContactIn,
    ContactOut,
    DeliveryOut,
    Erasure,
    EscalationStep,
    NotificationAccepted,
    NotificationCancelled,
    NotificationIn,
    NotificationOut,
    NotificationSummary,
    Page,
    RecipientIn,
    SubscriptionIn,
    SubscriptionOut,
    TimelineEvent,
)
from hub.client.paging import apaginate, paginate
from hub.client.webhooks import WebhookVerificationError, verify_webhook

__all__ = [
    "AsyncHub",
    "AuthenticationError",
    "BatchItem",
    "BatchItemResult",
    "BatchOut",
    "Conflict",
    "ContactIn",
    "ContactOut",
    "DeliveryOut",
    "Erasure",
    "EscalationStep",
    "FieldError",
    "Hub",
    "HubError",
    "NetworkError",
    "NotFound",
    "NotificationAccepted",
    "NotificationCancelled",
    "NotificationIn",
    "NotificationOut",
    "NotificationSummary",
    "Page",
    "PermissionDenied",
    "RateLimited",
    "RecipientIn",
    "RetryPolicy",
    "ServerError",
    "SubscriptionIn",
    "SubscriptionOut",
    "TimelineEvent",
    "ValidationError",
    "WebhookVerificationError",
    "apaginate",
    "paginate",
    "verify_webhook",
]
