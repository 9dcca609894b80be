"""The suppression list as the API reads and writes it."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, ValidationInfo, field_validator

from hub.domain import Channel, SuppressionReason
from hub.fields import MaybeLongText, normalize_email, normalize_phone
from hub.schemas.base import Out, Strict


def checked_address(channel: Channel, value: str) -> str:
    """The address as Hub stores it on that channel; raises ValueError when it is not one."""
    value = value.strip()
    if channel is Channel.EMAIL:
        return normalize_email(value)
    if channel in (Channel.SMS, Channel.VOICE):
        return normalize_phone(value)
    from hub.fields import check_webhook_url

    return check_webhook_url(value)


class SuppressionIn(Strict):
    """An address never to use on a channel."""

    channel: Channel = Field(description="The channel the address is for.")
    address: str = Field(min_length=1, max_length=2048, description="E-mail, phone or URL.")
    reason: SuppressionReason = Field(
        SuppressionReason.MANUAL,
        description="Why: `manual` by default; `erasure` is set only by erasing a contact.",
    )
    note: MaybeLongText = Field(None, description="For staff: anything worth keeping.")
    expires_at: dt.datetime | None = Field(None, description="Lifted by itself at this time.")

    @field_validator("address")
    @classmethod
    def _address(cls, value: str, info: ValidationInfo) -> str:
        channel = info.data.get("channel")
        return value if channel is None else checked_address(channel, value)

    @field_validator("reason")
    @classmethod
    def _reason(cls, value: SuppressionReason) -> SuppressionReason:
        if value is SuppressionReason.ERASURE:
            raise ValueError("'erasure' is set by erasing a contact, not by hand")
        return value

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("needs a time zone, e.g. 2026-12-31T00:00:00Z")
        return value


class SuppressionOut(Out):
    """An address never to use on a channel, and why."""

    id: int = Field(description="The suppression's id (to lift it).")
    channel: Channel = Field(description="The channel the address is for.")
    address: str | None = Field(description="None once the person was erased (hash kept).")
    reason: SuppressionReason = Field(
        description="Why: a hard bounce, a complaint, STOP, an erasure, by hand, ..."
    )
    source: str = Field(description="Where it came from: `api`, `console`, a provider, ...")
    actor: str = Field(description="Who added it: a key's name, a staff e-mail, the person.")
    note: str | None = Field(description="For staff: anything worth keeping.")
    created_at: dt.datetime = Field(description="When it was added (UTC).")
    expires_at: dt.datetime | None = Field(description="When it lifts by itself; null: never.")
