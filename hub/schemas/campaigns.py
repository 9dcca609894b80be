"""Campaigns as the API takes and shows them."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from hub.domain import CampaignState, Channel, ContactKind, DeliveryState
from hub.fields import Attributes, Email, Key, Locale, MaybeText, Text255, TimeZone
from hub.schemas.base import Out, Strict
from hub.schemas.engagement import EngagementOut
from hub.schemas.schedules import Now, Schedule
from hub.schemas.segments import AttributeName, Scalar


class SegmentIn(Strict):
    """Who of the topic's audience: every given condition must hold."""

    kind: ContactKind | None = Field(None, description="Only clients, or only employees.")
    locales: list[Locale] | None = Field(
        None, max_length=50, description="Any of these languages; 'ru' matches ru-RU."
    )
    timezones: list[TimeZone] | None = Field(
        None, max_length=100, description="Any of these IANA zones."
    )
    attributes: dict[AttributeName, Scalar] | None = Field(
        None, max_length=20, description='Equal as text: {"plan": "pro"}.'
    )


ArmName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,15}$")]


class VariantIn(Strict):
    """One arm of an A/B test: a template for a share of the audience."""

    name: ArmName = Field(
        description="What reports call it: A, B... (1-16 letters, digits, - or _; unique).",
        examples=["A"],
    )
    template: Key = Field(description="The template this arm sends.")
    share: int | None = Field(
        None,
        ge=1,
        le=99,
        description="Split mode: percent of the audience; all given and summing to 100, or "
        "none for an even split. A test-then-winner campaign splits its sample evenly "
        "(leave it out).",
    )


class AbMode(enum.StrEnum):
    SPLIT = "split"  # each person gets one variant, by share
    WINNER = "winner"  # a sample tries them all; the rest gets the best


class AbMetric(enum.StrEnum):
    CLICK = "click"
    OPEN = "open"


class AbIn(Strict):
    """How the variants are sent: `split` the audience by share, or `winner`: a test group
    (`sample` percent, split evenly) first, then after `wait_minutes` the variant with the
    better human `metric` rate (unique people per delivered) goes to everyone else."""

    mode: AbMode = Field(
        AbMode.SPLIT,
        description="`split`: each person one variant, by share; `winner`: a test group "
        "first, then the better variant to everyone else.",
    )
    sample: int | None = Field(
        None, ge=2, le=90, description="Winner mode: percent of the audience in the test group."
    )
    wait_minutes: int | None = Field(
        None, ge=1, le=7 * 24 * 60, description="Winner mode: how long the test group has."
    )
    metric: AbMetric = Field(
        AbMetric.CLICK, description="Winner mode: what picks the winner, human clicks or opens."
    )


class CampaignIn(Strict):
    """A campaign draft: what to send, to whom, and when."""

    name: Text255 = Field(description="What staff call it.")
    topic: Key = Field(
        description="The topic it is sent on (its key): its audience, subscribers and rules."
    )
    template: Key | None = Field(
        None,
        description="The template; with `variants`, leave it out (the first variant's is the "
        "campaign's own, for its dry run's samples and test send).",
    )
    data: Attributes = Field(default_factory=dict, description="What its template reads as `data`.")
    segment: SegmentIn | None = Field(
        None, description="Only the people of the topic's audience who match these conditions."
    )
    segment_key: Key | None = Field(
        None,
        description="A saved segment (/v1/segments) instead of `segment`: the campaign copies "
        "its conditions when created and sends with that copy.",
    )
    channels: list[Channel] | None = Field(
        None,
        max_length=4,
        description="Only these channels (each person's choice still applies); none: all the "
        "topic allows.",
        json_schema_extra={"uniqueItems": True},
    )
    schedule: Schedule = Field(
        default_factory=Now,
        description="When it goes once scheduled: `now`, `at` an instant, at a `local` "
        "wall-clock time in each person's zone, or `recurring` (cron or RFC 5545).",
    )
    throttle: dict[Channel, Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        None, description="Messages per minute per channel."
    )
    tracking: bool | None = Field(
        None,
        description="Track opens and clicks of its messages: true, false, or none to do as "
        "the topic says. A person who turned tracking off is never tracked.",
    )
    variants: list[VariantIn] | None = Field(
        None, min_length=2, max_length=4, description="An A/B test: 2-4 templates."
    )
    ab: AbIn | None = Field(None, description="How the variants are sent (default: split).")


class CampaignPatchIn(Strict):
    """What may change while the campaign is a draft (schedule runs the render check on it)."""

    data: Attributes = Field(
        description="The campaign's data, replaced whole: what its template reads as `data`."
    )


class ArmResultOut(Strict):
    """One variant's figures: unique people per delivered; human activity only."""

    name: str = Field(description="The variant's name.")
    template: str = Field(description="The template it sends.")
    delivered: int = Field(description="People with a sent or delivered message of it.")
    opens: int = Field(description="Of them, people who opened it (people, not machines).")
    clicks: int = Field(description="Of them, people who clicked a link (people, not machines).")
    open_rate: float | None = Field(description="opens / delivered; none before any delivery.")
    click_rate: float | None = Field(description="clicks / delivered.")
    notifications: list[int] = Field(
        default_factory=list, description="Its notifications compared here (a winner's rest not)."
    )


class AbResultsOut(Strict):
    """The variants compared on the chosen metric by a two-proportion z-test (pooled,
    two-sided) between the best and the runner-up."""

    metric: AbMetric = Field(description="What picks the winner: `click` or `open`.")
    arms: list[ArmResultOut] = Field(description="Each variant's figures.")
    leader: str | None = Field(description="The variant with the higher rate, if any differ.")
    z: float | None = Field(description="The test statistic; none when too few to tell.")
    p_value: float | None = Field(description="Two-sided; none when too few to tell.")
    note: str = Field(description="In words.", examples=["B's click rate is higher (p = 0.003)"])
    test_group_only: bool = Field(
        False, description="Winner mode: the figures are the test group's, not the rest's."
    )


class RunOut(Out):
    """One occurrence of the campaign that went out."""

    occurrence_at: dt.datetime = Field(description="The occurrence it was (UTC).")
    notification_id: int | None = Field(description="Its notification (GET /v1/notifications).")


class CampaignOut(Out):
    """A campaign, its state and its figures."""

    id: int = Field(description="The campaign's id.")
    name: str = Field(description="What staff call it.")
    topic: str = Field(description="The topic it is sent on (its key).")
    template: str = Field(description="Its template (A/B: the first variant's).")
    data: dict[str, Any] = Field(description="What its template reads as `data`.")
    segment: dict[str, Any] | None = Field(
        description="The conditions its audience must meet; null: the topic's whole audience."
    )
    segment_key: str | None = Field(None, description="The saved segment it copied, if any.")
    channels: list[str] | None = Field(description="Only these channels; null: all.")
    schedule: dict[str, Any] = Field(description="When it goes, as it was given.")
    throttle: dict[str, Any] | None = Field(
        description="Messages per minute per channel; null: as fast as the channels go."
    )
    state: CampaignState = Field(
        description="`draft`, `scheduled`, `sending`, `done`, `paused` or `cancelled`."
    )
    next_run_at: dt.datetime | None = Field(description="When it next goes; null: not due.")
    created_by: str = Field(description="Who created it: a staff e-mail or a key's name.")
    approved_by: str | None = Field(None, description="Who approved it, with approvals on.")
    approved_at: dt.datetime | None = Field(None, description="When it was approved (UTC).")
    created_at: dt.datetime = Field(description="When it was created (UTC).")
    updated_at: dt.datetime = Field(description="When it last changed (UTC).")
    runs: list[RunOut] = Field([], description="Each occurrence that went out, oldest first.")
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Deliveries by state and by channel, all runs."
    )
    refusals: dict[str, int] = Field(default_factory=dict, description="Refused, by reason.")
    failures: list[dict[str, Any]] = Field(
        default_factory=list, description="The commonest errors of failed deliveries."
    )
    tracking: bool | None = Field(None, description="Opens and clicks tracked; none: as the topic.")
    variants: list[dict[str, Any]] | None = Field(None, description="Its A/B variants, if any.")
    ab: dict[str, Any] | None = Field(
        None,
        description="How the variants are sent; a decided test adds winner, decided_at, why "
        "and rates.",
    )
    ab_results: AbResultsOut | None = Field(
        None, description="The variants compared, with a significance note (A/B only)."
    )
    engagement: EngagementOut | None = Field(
        None,
        description="Opens, clicks and unsubscribes of all its runs, people apart from "
        "machines (GET one campaign only).",
    )


class RenderErrorOut(Strict):
    """A part that fails to render for one language and channel of the audience."""

    locale: str = Field(description="The people's language as their contacts have it; '' for none.")
    channel: Channel = Field(description="The channel it was rendered for.")
    field: str = Field(
        description="Where to fix it: template.<variant>.<part> ('' is the default variant), "
        "as in the template's own `variants`.",
        examples=["template.ru.sms_body"],
    )
    variant: str = Field(description="The variant that served this language ('' the default).")
    arm: str | None = Field(None, description="A/B: the campaign variant whose template it is.")
    template: str | None = Field(None, description="A/B: that variant's template.")
    part: str = Field(description="email_subject, email_html, email_text, sms_body...")
    line: int | None = Field(description="The part's line the error is on, when known.")
    message: str = Field(
        description="Why, in words.", examples=["the campaign's data has no 'discount'"]
    )
    missing: str | None = Field(
        None,
        description="The value the part reads that is not there, as a path: data.discount, "
        "contact.attributes.plan. A `data.` one is fixed in the campaign's data.",
        examples=["data.discount"],
    )
    contact: str = Field(description="The external id of the person it was rendered for.")
    people: int = Field(description="People of the audience on this language and channel.")
    summary: str = Field(
        description="All of it in one line.",
        examples=["ru · sms_body · line 1: the campaign's data has no 'discount'"],
    )


class RenderOut(Strict):
    """What one real person of the audience would get: one per language and channel."""

    locale: str = Field(description="The people's language; '' for none.")
    channel: Channel = Field(description="The channel it was rendered for.")
    contact: str = Field(description="The external id of the person it was rendered for.")
    people: int = Field(description="People of the audience on this language and channel.")
    arm: str | None = Field(None, description="A/B: the campaign variant whose template it is.")
    subject: str | None = Field(None, description="E-mail: the subject.")
    text: str = Field(
        description="The text (the e-mail's, the SMS, the call's; the webhook's "
        "JSON), cut short after 160 characters."
    )
    length: int | None = Field(None, description="SMS: its length in characters.")
    segments: int | None = Field(None, description="SMS: how many messages it is billed as.")


class DryRunOut(Strict):
    """What scheduling the campaign now would do; nothing is written."""

    audience: int = Field(description="People the topic and segment reach.")
    send: dict[str, int] = Field(description="Deliveries that would go, by channel.")
    deferred: dict[str, int] = Field(description="Would wait (quiet hours...), by reason.")
    refused: dict[str, int] = Field(description="Would not go, by reason.")
    samples: dict[str, list[str]] = Field(description="Up to 5 external ids per outcome.")
    starts_at: dt.datetime = Field(description="When the first occurrence would go out.")
    waits_until: dict[str, list[dt.datetime]] = Field(
        description="For each deferral reason, the first and the last moment it ends."
    )
    renders: list[RenderOut] = Field(
        default_factory=list,
        description="The template rendered, with the campaign's data, for one real person of "
        "each language and channel that would be sent (or deferred): what people will get.",
    )
    render_errors: list[RenderErrorOut] = Field(
        default_factory=list,
        description="Each language and channel whose render fails: their deliveries would "
        "fail, and the campaign is not scheduled while any is listed.",
    )
    render_unchecked: int = Field(
        0, description="Languages x channels past the number one dry run renders (not tried)."
    )
    arms: dict[str, int] = Field(
        default_factory=dict,
        description="A/B: people of the audience per variant (before refusals); a "
        "test-then-winner campaign's `rest` is everyone outside the test group.",
    )


class TestSendIn(Strict):
    """Where a test send goes."""

    email: Email = Field(description="Where the test goes (yours).")
    name: MaybeText = Field(
        None, description="Your name, for the stand-in used when the audience is empty."
    )
    arm: str | None = Field(
        None, description="A/B: the variant to test (by name); the first one by default."
    )
    wait: float = Field(
        10.0,
        ge=0,
        le=30,
        description="Seconds to wait for the delivery's outcome before answering (0: do not).",
    )


class TestOutcome(enum.StrEnum):
    """How a test send ended, as far as Hub knows when it answers."""

    SENT = "sent"  # accepted by the mail server (or kept by the capture sink)
    DELIVERED = "delivered"  # a provider's delivery report confirmed it
    FAILED = "failed"  # not sent: rendering or the server refused it, for good
    REFUSED = "refused"  # held back before sending (a suppressed address...)
    WAITING = "waiting"  # deferred until a time
    UNKNOWN = "unknown"  # the server may or may not have it
    PENDING = "pending"  # still queued or sending when the wait ran out


class TestSendOut(Strict):
    """What became of a test send."""

    notification_id: int = Field(description="The test's own notification.")
    outcome: TestOutcome = Field(description="What became of it by the time of the answer.")
    message: str = Field(
        description="The outcome in words.", examples=["accepted by the mail server (sent)"]
    )
    whose: str = Field(
        description="Whose message it is and where it went: the test renders for the first "
        "person of the campaign's audience (their name, language and attributes) and is sent "
        "to the address given; with nobody in the audience, for a stand-in with no attributes.",
        examples=["the message Ada Lovelace (w-0001) would get, sent to mia@acme.example"],
    )
    rendered_for: str | None = Field(
        None,
        description="The external id of the person of the audience it was rendered as; none "
        "when the audience was empty and a stand-in was used.",
    )
    state: DeliveryState | None = Field(
        None, description="The delivery's state; none before fan-out made it."
    )
    error: str | None = Field(None, description="Why it failed or was refused.")
    variant: str | None = Field(
        None, description="A part that failed to render: its variant ('' the default)."
    )
    part: str | None = Field(None, description="A part that failed to render: its name.")
    line: int | None = Field(None, description="A part that failed to render: the line.")


# What the API documentation shows; tests/unit/test_openapi_quality.py validates it.
CAMPAIGN_EXAMPLE: dict[str, Any] = {
    "name": "December newsletter",
    "topic": "newsletter",
    "template": "newsletter-december",
    "data": {"offer": "20% off until Friday"},
    "segment": {"attributes": {"plan": "gold"}},
    "schedule": {"kind": "local", "at": "2026-12-01T10:00:00"},
    "throttle": {"email": 5000},
}
