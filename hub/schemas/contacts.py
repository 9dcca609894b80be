"""Contacts as the API, the importer and the CLI see them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

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

    kind: ContactKind = Field(
        ContactKind.CLIENT,
        description="`client` or `employee`: which topics' audience the person is in.",
    )
    name: MaybeText = Field(None, description="How messages address the person.")
    email: MaybeEmail = Field(
        None, description="E-mail address; its domain is stored in lower case."
    )
    phone: MaybePhone = Field(
        None, description="For SMS and calls. Any international spelling; stored as E.164."
    )
    webhook_url: MaybeWebhookUrl = Field(
        None, description="Where the webhook channel posts this person's messages (http(s))."
    )
    locale: MaybeLocale = Field(
        None, description="BCP 47 tag such as en, ru-RU: the language templates render in."
    )
    timezone: TimeZone = Field(
        "UTC",
        description="IANA zone such as Europe/Berlin: quiet hours, digests and local-time "
        "campaigns follow it.",
    )
    attributes: Attributes = Field(
        default_factory=dict,
        description="Free JSON for personalisation and segments (templates read it as "
        "`contact.attributes`); at most 16 KiB, 8 levels deep.",
    )

    def given(self) -> dict[str, Any]:
        """Only the fields the caller sent: PATCH and import semantics."""
        # The validated values themselves, in field order (model_dump would copy them): half
        # the cost, which counts when an import checks millions of rows.
        sent = self.model_fields_set
        return {name: getattr(self, name) for name in _FIELD_NAMES if name in sent}


_FIELD_NAMES = tuple(ContactIn.model_fields)


class ContactOut(Out):
    """A contact as stored."""

    external_id: str = Field(description="Your own id for the person (NFC-normalised).")
    kind: ContactKind = Field(description="`client` or `employee`.")
    name: str | None = Field(description="How messages address the person.")
    email: str | None = Field(description="E-mail address, its domain in lower case.")
    phone: str | None = Field(description="Phone number in E.164, e.g. +14155552671.")
    webhook_url: str | None = Field(description="Where the webhook channel posts.")
    locale: str | None = Field(description="BCP 47 language tag; null: the template's default.")
    timezone: str = Field(description="IANA time zone.")
    attributes: dict[str, Any] = Field(description="Free JSON for personalisation and segments.")
    created_at: dt.datetime = Field(description="When the contact was created (UTC).")
    updated_at: dt.datetime = Field(description="When a field last changed (UTC).")


# What the API documentation shows; tests/unit/test_openapi_quality.py validates both.
# No null in them: FastAPI leaves every null out of the OpenAPI document, examples too.
CONTACT_EXAMPLE: dict[str, Any] = {
    "kind": "client",
    "name": "Ann Lee",
    "email": "ann@example.com",
    "phone": "+44 20 7946 0958",
    "locale": "en-GB",
    "timezone": "Europe/London",
    "attributes": {"plan": "gold", "city": "London"},
}
CONTACT_OUT_EXAMPLE: dict[str, Any] = {
    "external_id": "crm-1",
    **CONTACT_EXAMPLE,
    "phone": "+442079460958",
    "webhook_url": "https://crm.example.com/hooks/hub",
    "created_at": "2026-03-02T09:15:00Z",
    "updated_at": "2026-03-02T09:15:00Z",
}


class ErasureOut(BaseModel):
    """What an erasure did."""

    external_id: str = Field(description="The erased contact's id; never given to anyone again.")
    erased_at: str = Field(description="When it was erased (ISO 8601, UTC).")
    suppressions_added: int = Field(
        description="Keyed hashes of the person's addresses added to the suppression list."
    )
