"""Campaigns as the API takes and shows them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import Field

from hub.domain import CampaignState, Channel, ContactKind
from hub.fields import Attributes, Email, Key, Locale, MaybeText, Text255, TimeZone
from hub.schemas.base import Out, Strict
from hub.schemas.schedules import Now, Schedule
from hub.schemas.segments import AttributeName, Scalar


class SegmentIn(Strict):
    """Who of the topic's audience: every given condition must hold."""

    kind: ContactKind | None = None
    locales: list[Locale] | None = Field(None, max_length=50, description="'ru' matches ru-RU.")
    timezones: list[TimeZone] | None = Field(None, max_length=100)
    attributes: dict[AttributeName, Scalar] | None = Field(
        None, max_length=20, description='Equal as text: {"plan": "pro"}.'
    )


class CampaignIn(Strict):
    name: Text255
    topic: Key
    template: Key
    data: Attributes = Field(default_factory=dict)
    segment: SegmentIn | None = None
    segment_key: Key | None = Field(
        None,
        description="A saved segment (/v1/segments) instead of `segment`: the campaign copies "
        "its conditions when created and sends with that copy.",
    )
    channels: list[Channel] | None = Field(
        None, max_length=4, json_schema_extra={"uniqueItems": True}
    )
    schedule: Schedule = Field(default_factory=Now)
    throttle: dict[Channel, Annotated[int, Field(ge=1, le=1_000_000)]] | None = Field(
        None, description="Messages per minute per channel."
    )


class RunOut(Out):
    occurrence_at: dt.datetime
    notification_id: int | None


class CampaignOut(Out):
    id: int
    name: str
    topic: str
    template: str
    data: dict[str, Any]
    segment: dict[str, Any] | None
    segment_key: str | None = Field(None, description="The saved segment it copied, if any.")
    channels: list[str] | None
    schedule: dict[str, Any]
    throttle: dict[str, Any] | None
    state: CampaignState
    next_run_at: dt.datetime | None
    created_by: str
    approved_by: str | None = None
    approved_at: dt.datetime | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    runs: list[RunOut] = []
    counts: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="Deliveries by state and by channel, all runs."
    )
    refusals: dict[str, int] = Field(default_factory=dict, description="Refused, by reason.")
    failures: list[dict[str, Any]] = Field(
        default_factory=list, description="The commonest errors of failed deliveries."
    )


class DryRunOut(Strict):
    audience: int = Field(description="People the topic and segment reach.")
    send: dict[str, int] = Field(description="Deliveries that would go, by channel.")
    deferred: dict[str, int] = Field(description="Would wait (quiet hours...), by reason.")
    refused: dict[str, int] = Field(description="Would not go, by reason.")
    samples: dict[str, list[str]] = Field(description="Up to 5 external ids per outcome.")
    starts_at: dt.datetime = Field(description="When the first occurrence would go out.")
    waits_until: dict[str, list[dt.datetime]] = Field(
        description="For each deferral reason, the first and the last moment it ends."
    )


class TestSendIn(Strict):
    email: Email
    name: MaybeText = None


class TestSendOut(Strict):
    notification_id: int
