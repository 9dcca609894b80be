"""Topics: what people can subscribe to, and on which channels."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from hub.domain import Audience, Channel, Frequency, TopicCategory
from hub.fields import MaybeLongText, Text255
from hub.schemas.base import Out, Strict


class TopicIn(Strict):
    """A whole topic (PUT): an omitted field takes its default."""

    name: Text255 = Field(description="Shown to people on their preferences page.")
    description: MaybeLongText = Field(
        None, description="What its messages are about, shown under the name."
    )
    audience: Audience = Field(
        Audience.ALL, description="Who may subscribe: `clients`, `employees` or `all`."
    )
    # Each list names a value at most once; the schema says so too (uniqueItems).
    allowed_channels: list[Channel] = Field(
        min_length=1,
        max_length=4,
        description="The channels its messages may use.",
        json_schema_extra={"uniqueItems": True},
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
        description="What people may choose: `immediate`, a `daily` or a `weekly` digest.",
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
    bypass_quiet_hours: StrictBool = Field(
        False, description="Sent inside people's quiet hours too (security alerts)."
    )
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
    """A topic as stored, with every default filled in."""

    key: str = Field(description="The topic's key, as notifications and subscriptions name it.")
    name: str = Field(description="Shown to people on their preferences page.")
    description: str | None = Field(description="What its messages are about.")
    audience: Audience = Field(description="Who may subscribe: `clients`, `employees` or `all`.")
    allowed_channels: list[Channel] = Field(description="The channels its messages may use.")
    default_channels: list[Channel] = Field(
        description="The channels of a subscription that names none."
    )
    allowed_frequencies: list[Frequency] = Field(description="What people may choose.")
    public: bool = Field(description="Shown on the self-service page.")
    required: bool = Field(description="People cannot unsubscribe from it.")
    category: TopicCategory = Field(
        description="`transactional` or `marketing`: which rules its messages follow."
    )
    tracking: bool = Field(description="Opens and clicks of its e-mail are tracked.")
    track_sms: bool = Field(description="The links of its SMS are tracked too.")
    bypass_quiet_hours: bool = Field(description="Sent inside people's quiet hours too.")
    cap_per_day: int | None = Field(
        description="Marketing messages per person per rolling day; "
        "null: HUB_FREQUENCY_CAP_PER_DAY."
    )
    cap_per_week: int | None = Field(
        description="Marketing messages per person per rolling week; "
        "null: HUB_FREQUENCY_CAP_PER_WEEK."
    )
    cap_action: str = Field(description="Past a cap: `defer` (hold) or `drop` (refuse).")
    created_at: dt.datetime = Field(description="When it was created (UTC).")
    updated_at: dt.datetime = Field(description="When it last changed (UTC).")


# What the API documentation shows; tests/unit/test_openapi_quality.py validates them.
# No null in them: FastAPI leaves every null out of the OpenAPI document, examples too.
TOPIC_EXAMPLE: dict[str, Any] = {
    "name": "Newsletter",
    "description": "New products and offers, once or twice a week.",
    "audience": "clients",
    "allowed_channels": ["email", "sms"],
    "default_channels": ["email"],
    "allowed_frequencies": ["immediate", "weekly"],
    "category": "marketing",
    "cap_per_day": 1,
    "cap_per_week": 2,
}
TOPIC_OUT_EXAMPLE: dict[str, Any] = {
    "key": "newsletter",
    **TOPIC_EXAMPLE,
    "public": True,
    "required": False,
    "tracking": True,
    "track_sms": False,
    "bypass_quiet_hours": False,
    "cap_action": "defer",
    "created_at": "2026-03-02T09:15:00Z",
    "updated_at": "2026-03-02T09:15:00Z",
}
