"""Topics: what people can subscribe to, and on which channels."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from hub.domain import Audience, Channel, Frequency, TopicCategory
from hub.fields import MaybeLongText, Text255
from hub.schemas.base import Out, Strict


class TopicIn(Strict):
    name: Text255
    description: MaybeLongText = None
    audience: Audience = Audience.ALL
    # Each list names a value at most once; the schema says so too (uniqueItems).
    allowed_channels: list[Channel] = Field(
        min_length=1, max_length=4, json_schema_extra={"uniqueItems": True}
    )
    default_channels: list[Channel] | None = Field(
        None,
        max_length=4,
        description="Defaults to allowed_channels.",
        json_schema_extra={"uniqueItems": True},
    )
    allowed_frequencies: list[Frequency] = Field(
        default_factory=lambda: [Frequency.IMMEDIATE],
        min_length=1,
        max_length=3,
        json_schema_extra={"uniqueItems": True},
    )
    public: StrictBool = Field(True, description="Shown on the self-service page.")
    required: StrictBool = Field(
        False,
        description="People cannot unsubscribe from it (password resets, security alerts); "
        "their channel choice still applies. A separate question from `category`.",
    )
    category: TopicCategory | None = Field(
        None,
        validate_default=True,
        description="Which rules its messages follow. `marketing`: SMS and calls only inside "
        "the legal window (08:00-21:00 local), the frequency caps, List-Unsubscribe on every "
        "e-mail, and an erased person's address stays suppressed. `transactional` (an order "
        "shipped, a password reset): sent when due, whatever the hour or the count. Omitted: "
        "`marketing`, unless `required` is true, then `transactional`. A marketing topic cannot "
        "be required: people may always refuse marketing.",
    )
    tracking: StrictBool | None = Field(
        None,
        validate_default=True,
        description="Track opens (a pixel) and clicks (links rewritten to signed redirects on "
        "HUB_PUBLIC_URL) of its e-mail. Omitted: on for `marketing`, off for `transactional`. "
        "A person who turned tracking off on their preferences page is never tracked.",
    )
    track_sms: StrictBool = Field(
        False, description="Rewrite the links of its SMS too (when `tracking` is on)."
    )
    bypass_quiet_hours: StrictBool = False
    cap_per_day: int | None = Field(
        None, ge=1, le=1000, description="Marketing messages per person per rolling day."
    )
    cap_per_week: int | None = Field(
        None, ge=1, le=10_000, description="Marketing messages per person per rolling week."
    )
    cap_action: Literal["defer", "drop"] = Field(
        "defer", description="Past a cap: hold the message until it fits, or refuse it."
    )

    # Field validators, not one model validator, so an error names its field.
    @field_validator("allowed_channels", "default_channels", "allowed_frequencies")
    @classmethod
    def _once_each(cls, value: list[Any] | None) -> list[Any] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists a value twice")
        return value

    @field_validator("category")
    @classmethod
    def _category(cls, value: TopicCategory | None, info: ValidationInfo) -> TopicCategory:
        required = info.data.get("required", False)
        if value is None:
            return TopicCategory.TRANSACTIONAL if required else TopicCategory.MARKETING
        if value is TopicCategory.MARKETING and required:
            raise ValueError(
                "a marketing topic cannot be required: people may always refuse marketing; "
                "make it transactional, or not required"
            )
        return value

    @field_validator("tracking")
    @classmethod
    def _tracking(cls, value: bool | None, info: ValidationInfo) -> bool:
        if value is None:
            return info.data.get("category") is TopicCategory.MARKETING
        return value

    @field_validator("default_channels")
    @classmethod
    def _within_allowed(cls, value: list[Channel] | None, info: ValidationInfo) -> Any:
        allowed = info.data.get("allowed_channels")
        extra = [c.value for c in value or [] if allowed is not None and c not in allowed]
        if extra:
            raise ValueError(f"{extra} not in allowed_channels")
        return value

    @model_validator(mode="after")
    def _default_channels(self) -> Self:
        if self.default_channels is None:
            self.default_channels = list(self.allowed_channels)
        return self


class TopicOut(Out):
    key: str
    name: str
    description: str | None
    audience: Audience
    allowed_channels: list[Channel]
    default_channels: list[Channel]
    allowed_frequencies: list[Frequency]
    public: bool
    required: bool
    category: TopicCategory
    tracking: bool
    track_sms: bool
    bypass_quiet_hours: bool
    cap_per_day: int | None
    cap_per_week: int | None
    cap_action: str
    created_at: dt.datetime
    updated_at: dt.datetime
