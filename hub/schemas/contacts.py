"""Contacts as the API, the importer and the CLI see them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field

from hub.domain import ContactKind
from hub.fields import (
    Attributes,
    MaybeEmail,
    MaybeLocale,
    MaybePhone,
    MaybeText,
    MaybeWebhookUrl,
    TimeZone,
)
from hub.schemas.base import Out, Strict

CONTACT_FIELDS = ("kind", "name", "email", "phone", "webhook_url", "locale", "timezone")


class ContactIn(Strict):
    """A whole contact (PUT). PATCH and import take the same fields, each optional."""

    kind: ContactKind = ContactKind.CLIENT
    name: MaybeText = None
    email: MaybeEmail = None
    phone: MaybePhone = Field(None, description="Any international spelling; stored as E.164.")
    webhook_url: MaybeWebhookUrl = None
    locale: MaybeLocale = Field(None, description="BCP 47 tag such as en, ru-RU.")
    timezone: TimeZone = Field("UTC", description="IANA zone such as Europe/Berlin.")
    attributes: Attributes = Field(
        default_factory=dict, description="Free JSON for personalisation and segments."
    )

    def given(self) -> dict[str, Any]:
        """Only the fields the caller sent: PATCH and import semantics."""
        # The validated values themselves, in field order (model_dump would copy them): half
        # the cost, which counts when an import checks millions of rows.
        sent = self.model_fields_set
        return {name: getattr(self, name) for name in _FIELD_NAMES if name in sent}


_FIELD_NAMES = tuple(ContactIn.model_fields)


class ContactOut(Out):
    external_id: str
    kind: ContactKind
    name: str | None
    email: str | None
    phone: str | None
    webhook_url: str | None
    locale: str | None
    timezone: str
    attributes: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime
