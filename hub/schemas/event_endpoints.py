"""Event endpoints and their delivery log as the API shows them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, field_validator

from hub.channels import signing
from hub.domain import EventMessageState, EventType
from hub.fields import MaybeText, WebhookUrl
from hub.schemas.base import Out, Strict

EVENT_TYPES_HELP = (
    "Timeline event types to receive, e.g. `delivery.delivered`, `delivery.failed`, "
    "`delivery.bounced`, `suppression.added` (STOP, hard bounces, complaints), "
    "`subscription.changed` (unsubscribes), `preferences.changed`, `inbound.message`. "
    "Contacts created by a bulk import are not announced one by one."
)


class EventEndpointIn(Strict):
    url: WebhookUrl
    event_types: list[EventType] = Field(min_length=1, max_length=len(EventType))
    description: MaybeText = None
    secret: str | None = Field(
        None,
        max_length=128,
        description="`whsec_<base64>` (24 to 64 bytes) to sign with; Hub makes one when absent.",
    )

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None:
            signing.parse_secret(value)
        return value


class EventEndpointPatch(Strict):
    url: WebhookUrl | None = None
    event_types: list[EventType] | None = Field(None, min_length=1, max_length=len(EventType))
    description: MaybeText = None
    enabled: bool | None = Field(None, description="true sends what waited while disabled.")


class EventEndpointOut(Out):
    id: int
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class EventEndpointCreated(EventEndpointOut):
    secret: str = Field(description="Shown once: verify `webhook-signature` with it.")


class EventMessageOut(Out):
    id: int
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    event_type: str
    state: EventMessageState
    attempts: int
    next_attempt_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    created_at: dt.datetime
    delivered_at: dt.datetime | None
    payload: dict[str, Any]


class EventAttemptOut(Out):
    attempted_at: dt.datetime
    status_code: int | None
    error: str | None
    duration_ms: int


class EventMessageLog(EventMessageOut):
    attempt_log: list[EventAttemptOut]
