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
    "`subscription.changed` (unsubscribes), `refusal.reason` (why someone unsubscribed), "
    "`preferences.changed`, `inbound.message`, `client.assigned` (a client's owner changed). "
    "Contacts created by a bulk import are not announced one by one."
)


class EventEndpointIn(Strict):
    """An endpoint of another service, and the events it wants."""

    url: WebhookUrl = Field(description="Where events are posted (http or https).")
    event_types: list[EventType] = Field(
        min_length=1, max_length=len(EventType), description=EVENT_TYPES_HELP
    )
    description: MaybeText = Field(None, description="For staff: whose it is, what for.")
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
    """Only the fields sent change."""

    url: WebhookUrl | None = Field(None, description="Where events are posted.")
    event_types: list[EventType] | None = Field(
        None, min_length=1, max_length=len(EventType), description=EVENT_TYPES_HELP
    )
    description: MaybeText = Field(None, description="For staff; null clears it.")
    enabled: bool | None = Field(None, description="true sends what waited while disabled.")


class EventEndpointOut(Out):
    """A registered endpoint (without its secret)."""

    id: int = Field(description="The endpoint's id.")
    url: str = Field(description="Where events are posted.")
    description: str | None = Field(description="For staff: whose it is, what for.")
    event_types: list[str] = Field(description="The timeline event types it receives.")
    enabled: bool = Field(description="false: events wait until it is enabled again.")
    disabled_reason: str | None = Field(
        description="Why it was disabled (by hand, or after it kept failing); null: enabled."
    )
    created_at: dt.datetime = Field(description="When it was registered (UTC).")
    updated_at: dt.datetime = Field(description="When it last changed (UTC).")


class EventEndpointCreated(EventEndpointOut):
    secret: str = Field(description="Shown once: verify `webhook-signature` with it.")


class EventMessageOut(Out):
    """One event on its way to one endpoint."""

    id: int = Field(description="The message's id.")
    webhook_id: str = Field(description="The `webhook-id` header of every attempt.")
    event_type: str = Field(description="The timeline event type, e.g. `delivery.delivered`.")
    state: EventMessageState = Field(
        description="`pending` (waiting for an attempt), `sending`, `delivered` or `failed` "
        "(the retry schedule ran out)."
    )
    attempts: int = Field(description="Attempts made so far.")
    next_attempt_at: dt.datetime | None = Field(
        description="When the next attempt is due, while pending; null otherwise."
    )
    last_status: int | None = Field(description="The HTTP status of the last attempt.")
    last_error: str | None = Field(description="What went wrong on the last attempt.")
    created_at: dt.datetime = Field(description="When the event happened (UTC).")
    delivered_at: dt.datetime | None = Field(description="When the endpoint took it (UTC).")
    payload: dict[str, Any] = Field(description="The JSON body posted.")


class EventAttemptOut(Out):
    """One attempt to post a message."""

    attempted_at: dt.datetime = Field(description="When it was made (UTC).")
    status_code: int | None = Field(description="The HTTP status; null: no answer.")
    error: str | None = Field(description="What went wrong; null: it was taken.")
    duration_ms: int = Field(description="How long it took, in milliseconds.")


class EventMessageLog(EventMessageOut):
    """One message with every attempt."""

    attempt_log: list[EventAttemptOut] = Field(description="Every attempt, oldest first.")
