"""Notifications: what a service posts, and what it reads back while it goes out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from hub.domain import Channel, DeliveryState, EscalationUnless, NotificationState
from hub.fields import Attributes, ExternalId, Key
from hub.schemas.base import Out, Page, Strict
from hub.schemas.engagement import EngagementOut
from hub.schemas.templates import Variants, check_has_default

MAX_NAMED_RECIPIENTS = 10_000
# How far ahead a notification may be scheduled: further is almost always a mistake (a
# year in milliseconds read as seconds), and a campaign is the tool for planned sends.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)


class EscalationStep(Strict):
    channel: Channel
    after_minutes: float = Field(
        0,
        ge=0,
        le=7 * 24 * 60,
        description="How long this step waits after the step before it (a failure of that "
        "step brings it forward).",
    )
    unless: EscalationUnless = Field(
        EscalationUnless.REACHED,
        description="When it comes due, it does not go if an earlier step: `reached` the "
        "person (delivered, or accepted by the mail server or webhook); was `opened` by a "
        "person (the e-mail's images loaded, or one of its links followed); or had one of its "
        "links `clicked` by a person. Machine opens and clicks do not count: a privacy proxy "
        "fetching every image (Apple Mail Privacy Protection, Gmail's image proxy) or a mail "
        "filter's link scanner, so an Apple Mail reader whose proxy fetched the pixel still "
        "gets this step. `opened` and `clicked` need tracking on for the topic (or campaign) "
        "and the person; without it nothing is seen, and the step waits and goes.",
    )


class NotificationIn(Strict):
    topic: Key = Field(description="The topic it is about; decides audience and channels.")
    recipients: list[ExternalId] | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAMED_RECIPIENTS,
        description="Contacts' external ids; omit to reach every subscriber of the topic.",
    )
    template: Key | None = Field(None, description="A stored template's key.")
    content: Annotated[Variants, AfterValidator(check_has_default)] | None = Field(
        None, description="Inline parts by locale, instead of a stored template."
    )
    data: Attributes = Field(default_factory=dict, description="Values for the template.")
    channels: list[Channel] | None = Field(
        None, min_length=1, description="Only these channels (else as each person chose)."
    )
    escalation: list[EscalationStep] | None = Field(
        None,
        min_length=2,
        max_length=4,
        description="Channels in turn: each later step waits its delay, then goes unless an "
        "earlier step did what its `unless` asks (reached the person, by default; or was "
        "opened, or clicked, by a person); a failure brings it forward. Channels a person "
        "did not choose are skipped. Each step's events and the delivery's explain say why "
        "it went or stopped.",
    )
    send_at: AwareDatetime | None = Field(
        None,
        description="Send at this instant (with a time zone offset) instead of at once. "
        "Until then the notification is `scheduled` and can be cancelled with "
        "`POST /v1/notifications/{id}/cancel`; a time already past sends at once. At most "
        "366 days ahead.",
        examples=["2026-12-24T09:00:00+01:00"],
    )

    @model_validator(mode="after")
    def _one_source(self) -> NotificationIn:
        if (self.template is None) == (self.content is None):
            raise ValueError("give exactly one of template and content")
        if self.escalation is not None:
            if self.channels is not None:
                raise ValueError("give channels or escalation, not both")
            chain = [step.channel for step in self.escalation]
            if len(set(chain)) != len(chain):
                raise ValueError("escalation names a channel twice")
            _check_conditions(self.escalation)
        return self


# The channels whose messages can show a person read them: e-mail (its open pixel and
# tracked links) and SMS (tracked links, where the topic tracks them).
_ENGAGING = frozenset({Channel.EMAIL, Channel.SMS})


def _check_conditions(steps: list[EscalationStep]) -> None:
    """A condition no earlier step could ever meet is a mistake, not a chain that always
    goes: say so (422) rather than send every step."""
    for index, step in enumerate(steps):
        if step.unless is EscalationUnless.REACHED:
            continue
        if index == 0:
            raise ValueError(
                f"escalation.0.unless: the first step goes at once; {step.unless.value!r} "
                "is for a later step"
            )
        if not _ENGAGING & {earlier.channel for earlier in steps[:index]}:
            raise ValueError(
                f"escalation.{index}.unless: no step before it can be {step.unless.value} "
                "(only e-mail, or SMS with tracked links, can)"
            )


class NotificationAccepted(Strict):
    id: int
    state: NotificationState
    topic: str
    created_at: dt.datetime
    send_at: dt.datetime | None = None


class DeliveryOut(Out):
    id: int
    contact: str = Field(description="The contact's external id.")
    channel: Channel
    state: DeliveryState
    reason: str | None
    attempts: int
    ambiguous: bool
    provider: str | None
    provider_id: str | None
    error_code: str | None
    error: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    sent_at: dt.datetime | None
    not_before: dt.datetime | None = Field(
        description="A deferred or retried delivery waits until then (quiet hours, caps...)."
    )


class NotificationOut(Strict):
    id: int
    topic: str
    template: str | None
    source: str
    state: NotificationState
    created_at: dt.datetime
    send_at: dt.datetime | None = Field(
        None, description="When a scheduled notification goes (or went); null: at once."
    )
    cancelled_at: dt.datetime | None = Field(
        None, description="When it was cancelled, before anything was sent."
    )
    fanned_out_at: dt.datetime | None
    counts: dict[str, int] = Field(description="Deliveries by state.")
    by_channel: dict[str, dict[str, int]] = Field(description="Deliveries by channel and state.")
    deliveries: Page[DeliveryOut]
    engagement: EngagementOut = Field(
        description="Opens, clicks and unsubscribes, people apart from machines."
    )
