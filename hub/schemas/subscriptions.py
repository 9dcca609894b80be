"""Subscriptions and contact-wide preferences."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, Self

from pydantic import Field, StrictBool, WithJsonSchema, model_validator

from hub.domain import Channel, Frequency, SubscriptionStatus
from hub.schemas.base import Out, Strict

# A local wall-clock time. JSON Schema's `format: time` demands an offset, which these never
# carry, so the schema spells the accepted form out instead.
WallClock = Annotated[
    dt.time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "examples": ["22:00", "07:30:00"],
        }
    ),
]


class SubscriptionIn(Strict):
    status: Literal[SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.UNSUBSCRIBED] = (
        SubscriptionStatus.SUBSCRIBED
    )
    channels: list[Channel] | None = Field(
        None,
        max_length=4,
        json_schema_extra={"uniqueItems": True},
        description="In order of preference. Defaults to the current choice, else to the "
        "topic's default channels the contact has an address for.",
    )
    frequency: Frequency | None = Field(
        None, description="Defaults to the current, else immediate."
    )


class SubscriptionOut(Out):
    topic: str
    status: SubscriptionStatus
    channels: list[Channel]
    frequency: Frequency
    implicit: bool = Field(
        False, description="A required topic the contact never chose: its defaults apply."
    )
    consent_source: str | None = None
    consent_actor: str | None = None
    consent_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None


class QuietHoursIn(Strict):
    start: WallClock = Field(description="Local time in the contact's zone, e.g. 22:00")
    end: WallClock = Field(description="May be earlier than start: the window wraps midnight.")

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("quiet hours are local wall-clock times; leave out the offset")
        if self.start == self.end:
            raise ValueError("start and end are equal; send null to clear quiet hours")
        return self


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class DigestIn(Strict):
    time: WallClock = Field(description="Local time in the contact's zone, e.g. 18:00")
    weekday: Weekday | None = Field(
        None, description="The day of weekly digests; leave out for the hub's (Monday)."
    )

    @model_validator(mode="after")
    def _local(self) -> Self:
        if self.time.tzinfo is not None:
            raise ValueError("a digest time is a local wall-clock time; leave out the offset")
        return self


class PreferencesPatch(Strict):
    blocked_channels: list[Channel] | None = Field(None, description="Channels never to use.")
    quiet_hours: QuietHoursIn | None = None
    digest: DigestIn | None = Field(
        None,
        description="When daily and weekly digests arrive; null for the hub's time (09:00).",
    )
    unsubscribed_all: StrictBool | None = Field(
        None, description="Unsubscribe from every topic except required ones."
    )
    tracking_off: StrictBool | None = Field(
        None,
        description="The person does not want to be tracked: from now on their messages carry "
        "no open pixel and no rewritten links, whatever the topic or campaign says. `false` "
        "(or null) lets the topic's own setting apply again.",
        examples=[True],
    )


class QuietHoursOut(Out):
    start: WallClock
    end: WallClock


class DigestOut(Out):
    time: WallClock
    weekday: Weekday | None


class PreferencesOut(Out):
    blocked_channels: list[Channel] = Field(description="Channels never to use.")
    quiet_hours: QuietHoursOut | None = Field(
        description="Nothing but required messages inside this local window; null: none."
    )
    digest: DigestOut | None = Field(
        None, description="When digests arrive; null: the hub's time (09:00, Mondays)."
    )
    unsubscribed_all: bool = Field(
        description="Unsubscribed from every topic except required ones."
    )
    tracking_off: bool = Field(
        description="The person turned tracking off (on their preferences page or through "
        "this API): their messages carry no open pixel and no rewritten links. false: opens "
        "and clicks are tracked where the topic or campaign tracks them.",
    )
    updated_at: dt.datetime | None = Field(description="Last change; null: never changed.")
