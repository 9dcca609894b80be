"""Templates: per-channel parts in per-locale variants, as the API reads and writes them."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import AfterValidator, Field, JsonValue, StringConstraints, field_validator

from hub.fields import Attributes, ExternalId, MaybeLocale, MaybeLongText, no_control_characters
from hub.schemas.base import Out, Strict

LOCALE_KEY = r"^([A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)?$"
LocaleKey = Annotated[str, StringConstraints(max_length=35, pattern=LOCALE_KEY)]


def _part(max_length: int, description: str) -> Any:
    return Field(None, max_length=max_length, description=description)


class PartsIn(Strict):
    """One locale's parts; each is a Jinja2 template rendered in the sandbox."""

    email_subject: Annotated[str, AfterValidator(no_control_characters)] | None = _part(
        1000, "E-mail subject."
    )
    email_html: str | None = _part(
        100_000, "E-mail HTML body (autoescaped); the layout adds a footer."
    )
    email_text: str | None = _part(100_000, "E-mail text body; derived from the HTML if absent.")
    sms_body: str | None = _part(2000, "SMS text.")
    voice_say: str | None = _part(5000, "What the voice call says, in the contact's language.")
    webhook_json: JsonValue | None = Field(
        None, description="JSON document for webhooks; every string in it is a template."
    )


Variants = Annotated[
    dict[LocaleKey, PartsIn],
    Field(
        min_length=1,
        max_length=50,
        description='Parts by locale: "" is the default; "ru-RU" falls back to "ru", then "".',
    ),
]


def check_has_default(variants: dict[str, PartsIn]) -> dict[str, PartsIn]:
    if "" not in variants:
        raise ValueError('needs a default variant under the key "" (the fallback of every locale)')
    return variants


class TemplateIn(Strict):
    """A whole template (PUT): its parts per channel, in one or more languages."""

    description: MaybeLongText = Field(None, description="For staff: what it is for.")
    variants: Annotated[Variants, AfterValidator(check_has_default)]


class TemplateOut(Out):
    """A template's current content."""

    key: str = Field(description="The template's key, as notifications and campaigns name it.")
    description: str | None = Field(description="For staff: what it is for.")
    variants: dict[str, dict[str, Any]] = Field(
        description='Parts by locale ("" the default): only the parts each has.'
    )
    version: int = Field(description="1 for the first save, one more for each change.")
    created_at: dt.datetime = Field(description="When it was created (UTC).")
    updated_at: dt.datetime = Field(description="When it last changed (UTC).")

    @field_validator("variants", mode="before")
    @classmethod
    def _drop_empty(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return present(value)


class PreviewIn(Strict):
    """Who and what to render the template for."""

    contact: ExternalId | None = Field(
        None, description="Render for this contact (name, locale, attributes); else a sample."
    )
    locale: MaybeLocale = Field(None, description="Override the contact's locale.")
    topic: str | None = Field(None, max_length=100, description="Topic key for links and context.")
    data: Attributes = Field(default_factory=dict, description="The notification's data.")


class RenderedOut(Strict):
    """One channel's message, rendered."""

    subject: str | None = Field(None, description="E-mail: the subject.")
    text: str | None = Field(None, description="E-mail text, SMS text or what a call says.")
    html: str | None = Field(None, description="E-mail: the HTML, in its layout.")
    body: JsonValue | None = Field(None, description="Webhook: the JSON document.")
    error: str | None = Field(None, description="Why this channel could not render.")


class PreviewOut(Strict):
    """The template rendered for every channel it has parts for."""

    locale: str | None = Field(
        description="The locale rendered for: the one asked, or the contact's."
    )
    channels: dict[str, RenderedOut] = Field(description="Each channel's message, by channel.")


class TemplateVersionSummaryOut(Out):
    """One kept version of a template, without its parts (see `GET .../versions/{version}`)."""

    version: int = Field(description="1 for the first save, one more for each change.")
    description: str | None = Field(description="The template's description in this version.")
    locales: list[str] = Field(description='The languages it has; "" is the default.')
    saved_by: str = Field(description='A staff e-mail, "API key NAME", or who else saved it.')
    saved_at: dt.datetime = Field(description="When it was saved (UTC).")


class TemplateVersionOut(TemplateVersionSummaryOut):
    """One kept version of a template with its parts, as `GET /v1/templates/{key}` shows them."""

    variants: dict[str, dict[str, Any]] = Field(description="Its parts by locale.")

    @field_validator("variants", mode="before")
    @classmethod
    def _drop_empty(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        return present(value)


def present(variants: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The parts each variant has (a stored null is no part)."""
    return {
        loc: {k: v for k, v in parts.items() if v is not None} for loc, parts in variants.items()
    }


# What the API documentation shows; tests/unit/test_openapi_quality.py validates it.
TEMPLATE_EXAMPLE: dict[str, Any] = {
    "description": "Sent when an order leaves the warehouse.",
    "variants": {
        "": {
            "email_subject": "Your order {{ data.order_id }} is on its way",
            "email_html": "<p>Hello {{ contact.name }},</p><p>It ships today.</p>",
            "sms_body": "Order {{ data.order_id }} ships today.",
        },
        "de": {
            "email_subject": "Ihre Bestellung {{ data.order_id }} ist unterwegs",
            "email_html": "<p>Hallo {{ contact.name }},</p><p>Sie wird heute versandt.</p>",
            "sms_body": "Bestellung {{ data.order_id }} wird heute versandt.",
        },
    },
}
