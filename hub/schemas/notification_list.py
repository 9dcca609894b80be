"""GET /v1/notifications and POST /v1/notifications/{id}/cancel: what they answer."""

from __future__ import annotations

import datetime as dt

from pydantic import Field

from hub.domain import NotificationState
from hub.schemas.base import Out

# The stored `source` of a notification: `api:<key name>` for one posted with an API key,
# `campaign:<id>` for a campaign's (`campaign:<id>:test` for its test sends).
SOURCE_PATTERN = r"^(api:.+|campaign:[1-9][0-9]{0,17}(:test)?)$"


class NotificationSummary(Out):
    """One notification in a list: what it is, where it came from, and how far it got."""

    id: int = Field(description="The notification's id (`GET /v1/notifications/{id}`).")
    topic: str = Field(description="The key of the topic it is about.")
    template: str | None = Field(
        description="The stored template it was rendered from; null for inline content."
    )
    source: str = Field(
        description="Who sent it: `api:<key name>`, or `campaign:<id>` for a campaign's.",
        examples=["api:billing"],
    )
    state: NotificationState = Field(
        description="`scheduled` (waits for `send_at`), `accepted` (fanning out), "
        "`fanned_out` (every recipient has their deliveries) or `cancelled`."
    )
    created_at: dt.datetime = Field(description="When it was accepted.")
    send_at: dt.datetime | None = Field(
        description="When a scheduled notification goes (or went); null: at once."
    )
    cancelled_at: dt.datetime | None = Field(
        description="When it was cancelled, before anything was sent; null if it was not."
    )
    fanned_out_at: dt.datetime | None = Field(
        description="When every recipient had their delivery rows; null until then."
    )
    counts: dict[str, int] = Field(
        description="Its deliveries by state (`sent`, `delivered`, `failed`, ...); empty "
        "before its fan-out has written any.",
        examples=[{"sent": 2, "delivered": 40}],
    )


class NotificationCancelled(Out):
    """A cancelled notification: nothing of it was or will be sent."""

    id: int = Field(description="The notification's id.")
    state: NotificationState = Field(description="Always `cancelled`.")
    cancelled_at: dt.datetime = Field(
        description="When it was cancelled (the first time, when cancelled again)."
    )
