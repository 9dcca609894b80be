"""Subscriptions and contact-wide preferences."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Self

from pydantic import Field, StrictBool, WithJsonSchema, model_validator

from hub.domain import Channel, ClientScope, Frequency, SubscriptionStatus
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
    """A contact's choice for one topic."""

    status: Literal[SubscriptionStatus.SUBSCRIBED, SubscriptionStatus.UNSUBSCRIBED] = Field(
        SubscriptionStatus.SUBSCRIBED, description="`subscribed` or `unsubscribed`."
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
    scope: ClientScope | None = Field(
        None,
        description="Only for the client-event topics (`clients.replies`, `clients.refusals`, "
        "`clients.failures`, `clients.preferences`, `clients.clicks`): whose clients the "
        "employee hears of. `mine` (the clients they own), `teams` (also their teams' "
        "clients) or `all` (every client: only an employee whose staff account is an admin "
        "or marketer). Defaults to the current, else `mine`.",
    )


class SubscriptionOut(Out):
    """A contact's subscription to one topic, with its consent evidence."""

    topic: str = Field(description="The topic's key.")
    status: SubscriptionStatus = Field(description="`subscribed` or `unsubscribed`.")
    channels: list[Channel] = Field(description="The channels, in order of preference.")
    frequency: Frequency = Field(
        description="`immediate`, or gathered into a `daily` or `weekly` digest."
    )
    implicit: bool = Field(
        False, description="A required topic the contact never chose: its defaults apply."
    )
    scope: ClientScope | None = Field(
        None,
        description="A client-event topic's: whose clients (`mine`, `teams` or `all`); null "
        "for every other topic.",
    )
    consent_source: str | None = Field(
        None,
        description="Where the choice was made: `api`, `api.import`, `console`, a "
        "self-service page.",
    )
    consent_actor: str | None = Field(
        None, description="Who made it: a key's name, a staff e-mail, the person."
    )
    consent_at: dt.datetime | None = Field(None, description="When it was made (UTC).")
    updated_at: dt.datetime | None = Field(None, description="Last change (UTC).")


class QuietHoursIn(Strict):
    """A local window in which only required topics' messages go."""

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
    """When the contact's daily and weekly digests arrive."""

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
    """Only the fields sent change."""

    blocked_channels: list[Channel] | None = Field(None, description="Channels never to use.")
    quiet_hours: QuietHoursIn | None = Field(
        None,
        description="Nothing but required topics' messages inside this local window; null "
        "clears it.",
    )
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
    """A local window in which only required topics' messages go."""

    start: WallClock = Field(description="Local time in the contact's zone.")
    end: WallClock = Field(description="May be earlier than start: the window wraps midnight.")


class DigestOut(Out):
    """When the contact's digests arrive."""

    time: WallClock = Field(description="Local time in the contact's zone.")
    weekday: Weekday | None = Field(description="The day of weekly digests; null: Monday.")


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


# What the API documentation shows; tests/unit/test_openapi_quality.py validates them.
SUBSCRIPTION_EXAMPLE: dict[str, Any] = {
    "status": "subscribed",
    "channels": ["email", "sms"],
    "frequency": "immediate",
}
SUBSCRIPTION_OUT_EXAMPLE: dict[str, Any] = {
    "topic": "order-updates",
    **SUBSCRIPTION_EXAMPLE,
    "implicit": False,
    "consent_source": "api",
    "consent_actor": "checkout-service",
    "consent_at": "2026-03-02T09:15:00Z",
    "updated_at": "2026-03-02T09:15:00Z",
}
PREFERENCES_EXAMPLE: dict[str, Any] = {
    "blocked_channels": ["voice"],
    "quiet_hours": {"start": "22:00", "end": "07:30"},
    "digest": {"time": "18:00", "weekday": "friday"},
}
