"""Topics: what people can subscribe to, and on which channels."""

from __future__ import annotations

import datetime as dt
from typing import Self

from pydantic import Field, model_validator

from hub.domain import Audience, Channel, Frequency
from hub.fields import MaybeText, Text255
from hub.schemas.base import Out, Strict


class TopicIn(Strict):
    name: Text255
    description: MaybeText = Field(None, max_length=10_000)
    audience: Audience = Audience.ALL
    allowed_channels: list[Channel] = Field(min_length=1, max_length=4)
    default_channels: list[Channel] | None = Field(
        None, max_length=4, description="Defaults to allowed_channels."
    )
    allowed_frequencies: list[Frequency] = Field(
        default_factory=lambda: [Frequency.IMMEDIATE], min_length=1, max_length=3
    )
    public: bool = Field(True, description="Shown on the self-service page.")
    required: bool = Field(
        False, description="Transactional: cannot be unsubscribed; channel choice still applies."
    )
    bypass_quiet_hours: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if len(set(self.allowed_channels)) != len(self.allowed_channels):
            raise ValueError("allowed_channels: lists a channel twice")
        if self.default_channels is None:
            self.default_channels = list(self.allowed_channels)
        extra = [c.value for c in self.default_channels if c not in self.allowed_channels]
        if extra:
            raise ValueError(f"default_channels: {extra} not in allowed_channels")
        if len(set(self.default_channels)) != len(self.default_channels):
            raise ValueError("default_channels: lists a channel twice")
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
    bypass_quiet_hours: bool
    created_at: dt.datetime
    updated_at: dt.datetime
