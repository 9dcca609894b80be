"""Contacts as the API, the importer and the CLI see them."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, field_validator

from hub.domain import ContactKind
from hub.fields import (
    Attributes,
    ExternalId,
    MaybeEmail,
    MaybeLocale,
    MaybePhone,
    MaybeText,
    MaybeWebhookUrl,
    TimeZone,
)
from hub.schemas.base import Out, Strict
from hub.schemas.teams import TeamKey

CONTACT_FIELDS = ("kind", "name", "email", "phone", "webhook_url", "locale", "timezone")
# Who looks after the person: relations, not columns of the contact. Left out of
# `model_dump()` and `given()` (whose callers write columns) and read with `care()`.
CARE_FIELDS = ("owner", "teams")


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
    owner: ExternalId | None = Field(
        None,
        exclude=True,
        description="The external_id of the employee (a contact of kind `employee`) who looks "
        "after this client; null clears it. Only clients have owners: a hierarchy of employees "
        "is what teams are for. Left out (in PUT too): the owner stays as it is, so a service "
        "that syncs details does not undo assignments made in the console.",
    )
    teams: list[TeamKey] | None = Field(
        None,
        exclude=True,
        max_length=100,
        description="Keys of the teams the person belongs to (see /v1/teams), replacing the "
        "ones they had; [] or null: none. Left out (in PUT too): memberships stay as they are.",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("teams")
    @classmethod
    def _once_each(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("lists a team twice")
        return value

    def care(self) -> dict[str, Any]:
        """`owner` and `teams` when the caller sent them (null teams mean none)."""
        sent = self.model_fields_set
        given: dict[str, Any] = {}
        if "owner" in sent:
            given["owner"] = self.owner
        if "teams" in sent:
            given["teams"] = list(self.teams or [])
        return given

    def given(self) -> dict[str, Any]:
        """Only the fields the caller sent: PATCH and import semantics."""
        # The validated values themselves, in field order (model_dump would copy them): half
        # the cost, which counts when an import checks millions of rows.
        sent = self.model_fields_set
        return {name: getattr(self, name) for name in _FIELD_NAMES if name in sent}


_FIELD_NAMES = tuple(name for name in ContactIn.model_fields if name not in CARE_FIELDS)


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
    # Defaults, so the client still reads a contact from a hub from before owners and teams.
    owner: str | None = Field(
        None, description="The external_id of the employee who looks after this client; null: none."
    )
    teams: list[str] = Field(
        default_factory=list, description="Keys of the teams the person belongs to, sorted."
    )
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
    "owner": "emp-7",
    "teams": ["key-accounts-north"],
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
