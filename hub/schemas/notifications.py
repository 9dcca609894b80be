"""Notifications: what a service posts, and what it reads back while it goes out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, InitErrorDetails, PydanticCustomError, core_schema

from hub.domain import Channel, ContactKind, DeliveryState, EscalationUnless, NotificationState
from hub.fields import (
    Attributes,
    ExternalId,
    Key,
    MaybeEmail,
    MaybeLocale,
    MaybePhone,
    MaybeText,
    MaybeWebhookUrl,
    TimeZone,
)
from hub.schemas.base import Out, Page, Strict
from hub.schemas.engagement import EngagementOut
from hub.schemas.errors import ErrorBody
from hub.schemas.notification_list import NotificationSummary
from hub.schemas.templates import Variants, check_has_default

MAX_NAMED_RECIPIENTS = 10_000
MAX_BATCH = 1000
# How far ahead a notification may be scheduled: further is almost always a mistake (a
# year in milliseconds read as seconds), and a campaign is the tool for planned sends.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=366)


class EscalationStep(Strict):
    """One step of an escalation chain: a channel, when it goes, and what stops it."""

    channel: Channel = Field(
        description="The channel this step sends on; each channel at most once in a chain."
    )
    after_minutes: float = Field(
        0,
        ge=0,
        le=7 * 24 * 60,
        description="How long this step waits after the step before it (a failure of that "
        "step brings it forward).",
    )
    unless: EscalationUnless = Field(
        EscalationUnless.REACHED,
        description="When it comes due, it does not go if an earlier step: `reached` the "
        "person (delivered, or accepted by the mail server or webhook); was `opened` by a "
        "person (the e-mail's images loaded, or one of its links followed); or had one of its "
        "links `clicked` by a person. Machine opens and clicks do not count: a privacy proxy "
        "fetching every image (Apple Mail Privacy Protection, Gmail's image proxy) or a mail "
        "filter's link scanner, so an Apple Mail reader whose proxy fetched the pixel still "
        "gets this step. `opened` and `clicked` need tracking on for the topic (or campaign) "
        "and the person; without it nothing is seen, and the step waits and goes.",
    )


class RecipientIn(Strict):
    """A recipient named inline: created if there is no contact with this external id (as
    `PUT /v1/contacts/{external_id}` would create it), otherwise only the fields given change
    (as `PATCH`). Either is recorded on the person's timeline with the API key as actor."""

    external_id: ExternalId = Field(
        description="The caller's own id for the person; compared in Unicode NFC.",
        examples=["u-42"],
    )
    kind: ContactKind = Field(
        ContactKind.CLIENT, description="client or employee; `client` when created without it."
    )
    name: MaybeText = Field(None, description="How messages address the person.")
    email: MaybeEmail = Field(None, description="E-mail address; the domain is lower-cased.")
    phone: MaybePhone = Field(None, description="Any international spelling; stored as E.164.")
    webhook_url: MaybeWebhookUrl = Field(
        None, description="Where the webhook channel posts this person's messages."
    )
    locale: MaybeLocale = Field(None, description="BCP 47 tag such as en, ru-RU.")
    timezone: TimeZone = Field("UTC", description="IANA zone such as Europe/London.")
    attributes: Attributes = Field(
        default_factory=dict,
        description="Free JSON for personalisation and segments; merged key by key into the "
        "stored ones, and a null removes a key (as PATCH does).",
    )

    @model_serializer(mode="wrap")
    def _only_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Written out with only the fields given: a default written out would, read back,
        be a change (a client sending `timezone: "UTC"` it never set), and the idempotency
        hash must tell "timezone not given" from "timezone UTC"."""
        everything: dict[str, Any] = handler(self)
        sent = self.model_fields_set | {"external_id"}
        return {name: value for name, value in everything.items() if name in sent}

    def given(self) -> dict[str, Any]:
        """The contact fields the caller sent (PATCH semantics), without the external id."""
        sent = self.model_fields_set
        return {name: getattr(self, name) for name in _RECIPIENT_FIELDS if name in sent}


_RECIPIENT_FIELDS = tuple(name for name in RecipientIn.model_fields if name != "external_id")
Recipient = ExternalId | RecipientIn

# What the API documentation shows; tests/unit/test_notification_schemas.py validates them.
# No null in them: FastAPI leaves every null out of the OpenAPI document, examples too. A
# service's usual send: a transactional topic, a stored template, one existing contact and
# one named inline (created on the way in).
NOTIFICATION_EXAMPLE: dict[str, Any] = {
    "topic": "invoices",
    "template": "invoice-ready",
    "recipients": [
        "crm-1",
        {
            "external_id": "crm-2",
            "name": "Ben Okafor",
            "email": "ben@example.com",
            "locale": "en-GB",
            "timezone": "Europe/London",
        },
    ],
    "data": {"invoice_id": "INV-2026-0042", "amount": "120.00", "currency": "EUR"},
}
# The same, held until an instant (a time already past sends at once).
SCHEDULED_NOTIFICATION_EXAMPLE: dict[str, Any] = {
    "topic": "invoices",
    "template": "invoice-ready",
    "recipients": ["crm-1"],
    "data": {"invoice_id": "INV-2026-0043", "amount": "80.00", "currency": "EUR"},
    "send_at": "2027-01-04T09:00:00+01:00",
}
BATCH_EXAMPLE: dict[str, Any] = {
    "notifications": [
        NOTIFICATION_EXAMPLE | {"idempotency_key": "invoice-INV-2026-0042"},
        SCHEDULED_NOTIFICATION_EXAMPLE | {"idempotency_key": "invoice-INV-2026-0043"},
    ]
}


class NotificationIn(Strict):
    """One notification: a topic, what to say (a template or inline content), and to whom."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [NOTIFICATION_EXAMPLE, SCHEDULED_NOTIFICATION_EXAMPLE]}
    )

    topic: Key = Field(description="The topic it is about; decides audience and channels.")
    recipients: list[Recipient] | None = Field(
        None,
        min_length=1,
        max_length=MAX_NAMED_RECIPIENTS,
        description="The people to tell, each an existing contact's external id or an object "
        "naming the person inline (created if missing, else only the fields given change). "
        "An id given as a string must be a contact already or be named inline in the same "
        "notification. The same person named twice is told once; where two objects name "
        "them, the later one's fields win. Omit to reach every subscriber of the topic.",
        examples=[["u-1", {"external_id": "u-42", "name": "Ada", "email": "ada@example.com"}]],
    )
    template: Key | None = Field(None, description="A stored template's key.")
    content: Annotated[Variants, AfterValidator(check_has_default)] | None = Field(
        None, description="Inline parts by locale, instead of a stored template."
    )
    data: Attributes = Field(default_factory=dict, description="Values for the template.")
    channels: list[Channel] | None = Field(
        None, min_length=1, description="Only these channels (else as each person chose)."
    )
    escalation: list[EscalationStep] | None = Field(
        None,
        min_length=2,
        max_length=4,
        description="Channels in turn: each later step waits its delay, then goes unless an "
        "earlier step did what its `unless` asks (reached the person, by default; or was "
        "opened, or clicked, by a person); a failure brings it forward. Channels a person "
        "did not choose are skipped. Each step's events and the delivery's explain say why "
        "it went or stopped.",
    )
    send_at: AwareDatetime | None = Field(
        None,
        description="Send at this instant (with a time zone offset) instead of at once. "
        "Until then the notification is `scheduled` and can be cancelled with "
        "`POST /v1/notifications/{id}/cancel`; a time already past sends at once. At most "
        "366 days ahead.",
        examples=["2026-12-24T09:00:00+01:00"],
    )

    @field_validator("recipients", mode="wrap")
    @classmethod
    def _one_error_per_recipient(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """A bad recipient is reported once, at its place (`recipients[2].email`), not once
        for each form a recipient may take (string or object)."""
        try:
            return handler(value)
        except ValidationError as exc:
            raise _recipient_errors(exc, value) from None

    @model_validator(mode="after")
    def _one_source(self) -> NotificationIn:
        if (self.template is None) == (self.content is None):
            raise ValueError("give exactly one of template and content")
        if self.escalation is not None:
            if self.channels is not None:
                raise ValueError("give channels or escalation, not both")
            chain = [step.channel for step in self.escalation]
            if len(set(chain)) != len(chain):
                raise ValueError("escalation names a channel twice")
            _check_conditions(self.escalation)
        return self


def _recipient_errors(exc: ValidationError, value: Any) -> ValidationError:
    """The union's errors, keeping for each item only those of the form it was sent in."""
    kept: list[InitErrorDetails] = []
    for error in exc.errors():
        loc = error["loc"]
        if len(loc) < 2 or not isinstance(loc[0], int):
            kept.append(_detail(error, loc))  # the list itself: too long, not a list
            continue
        item = value[loc[0]] if isinstance(value, list) and loc[0] < len(value) else None
        if isinstance(item, dict):
            if loc[1] == RecipientIn.__name__:
                kept.append(_detail(error, (loc[0], *loc[2:])))
        elif isinstance(item, str):
            if loc[1] != RecipientIn.__name__:
                kept.append(_detail(error, (loc[0], *loc[2:])))
        elif loc[1] == RecipientIn.__name__:  # once per item
            message = "must be an external id (a string) or a recipient object"
            kept.append(
                InitErrorDetails(
                    type=PydanticCustomError("recipient_type", message), loc=(loc[0],), input=item
                )
            )
    return ValidationError.from_exception_data(exc.title, kept)


def _detail(error: Any, loc: tuple[int | str, ...]) -> InitErrorDetails:
    message = str(error["msg"]).removeprefix("Value error, ")
    return InitErrorDetails(
        type=PydanticCustomError(error["type"], message.replace("{", "{{").replace("}", "}}")),
        loc=loc,
        input=error.get("input"),
    )


# The channels whose messages can show a person read them: e-mail (its open pixel and
# tracked links) and SMS (tracked links, where the topic tracks them).
_ENGAGING = frozenset({Channel.EMAIL, Channel.SMS})


def _check_conditions(steps: list[EscalationStep]) -> None:
    """A condition no earlier step could ever meet is a mistake, not a chain that always
    goes: say so (422) rather than send every step."""
    for index, step in enumerate(steps):
        if step.unless is EscalationUnless.REACHED:
            continue
        if index == 0:
            raise ValueError(
                f"escalation.0.unless: the first step goes at once; {step.unless.value!r} "
                "is for a later step"
            )
        if not _ENGAGING & {earlier.channel for earlier in steps[:index]}:
            raise ValueError(
                f"escalation.{index}.unless: no step before it can be {step.unless.value} "
                "(only e-mail, or SMS with tracked links, can)"
            )


class NotificationAccepted(Out):
    """A notification committed: it goes out now (fan-out in workers) or at `send_at`."""

    id: int = Field(description="The notification's id: `GET /v1/notifications/{id}`.")
    state: NotificationState = Field(
        description="`accepted` (fan-out follows at once) or `scheduled` (at `send_at`)."
    )
    topic: str = Field(description="The topic's key.")
    created_at: dt.datetime = Field(description="When it was accepted (UTC).")
    send_at: dt.datetime | None = Field(
        None, description="When a scheduled notification goes; null: at once."
    )


IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"


class BatchItem(NotificationIn):
    """One notification of a batch: the body of `POST /v1/notifications`, and its own key."""

    model_config = ConfigDict(json_schema_extra={"examples": BATCH_EXAMPLE["notifications"]})

    idempotency_key: str | None = Field(
        None,
        min_length=1,
        max_length=255,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="As the `Idempotency-Key` header of a single POST, and sharing its keys: "
        "the same key and notification (here or in a single POST) answer with the first id "
        "and `replayed: true`; the same key with another notification, or twice in one "
        "batch, rejects the item (`idempotency_key_reused`).",
    )


class _CheckedOneByOne:
    """The batch's items as the description shows them (BatchItem), validated as raw JSON
    here: the route checks each item on its own, so one bad item does not refuse the rest."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.list_schema(core_schema.any_schema(), min_length=1, max_length=MAX_BATCH)

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        items = core_schema.list_schema(
            BatchItem.__pydantic_core_schema__, min_length=1, max_length=MAX_BATCH
        )
        return handler(items)


class BatchIn(Strict):
    """Up to 1,000 notifications in one request, each checked and answered on its own."""

    model_config = ConfigDict(json_schema_extra={"examples": [BATCH_EXAMPLE]})

    notifications: Annotated[list[Any], _CheckedOneByOne] = Field(
        description="1 to 1,000 notifications. Each is checked on its own: the answer says, "
        "item by item, which were accepted (with their ids) and which were rejected and why. "
        "The accepted ones are committed together.",
    )


class BatchItemResult(Out):
    """What became of one item of a batch."""

    index: int = Field(description="The item's place in `notifications`, from 0.")
    status: Literal["accepted", "rejected"] = Field(
        description="`accepted`: committed (or replayed); `rejected`: nothing was done for it."
    )
    id: int | None = Field(None, description="The notification's id, when accepted.")
    state: NotificationState | None = Field(
        None, description="`accepted` or `scheduled`, when accepted."
    )
    replayed: bool | None = Field(
        None,
        description="When accepted: true if its idempotency key and body matched an earlier "
        "request, whose notification `id` is; nothing new was created.",
    )
    error: ErrorBody | None = Field(
        None,
        description="When rejected: the error a single POST would have answered, its "
        "fields named within the batch (`notifications[3].recipients`).",
    )


class BatchOut(Out):
    """The outcome of every item, in the order sent."""

    accepted: int = Field(description="How many items were accepted (replays included).")
    rejected: int = Field(description="How many items were rejected.")
    results: list[BatchItemResult] = Field(description="One entry per item, in order.")


class DeliveryOut(Out):
    """One notification to one person on one channel, and how far it got."""

    id: int = Field(description="The delivery's id, unique across the hub.")
    contact: str = Field(description="The contact's external id.")
    channel: Channel = Field(description="The channel it goes by.")
    state: DeliveryState = Field(
        description="`queued` (waits for a worker), `sending`, `sent` (the provider took "
        "it), `delivered` (the provider reported it reached the person), `failed`, "
        "`bounced`, `suppressed` (refused before sending; `reason` says why), `deferred` "
        "(held for quiet hours, a legal window, a digest...; `not_before` says until when) "
        "or `unknown` (the provider may or may not have it)."
    )
    reason: str | None = Field(
        description="Why it is suppressed, deferred, failed or unknown: `quiet_hours`, "
        "`unsubscribed`, `hard_bounce`, `gave_up`, ...; null when nothing held it back."
    )
    attempts: int = Field(description="How many times it has been handed to the provider.")
    ambiguous: bool = Field(
        description="True when an attempt ended without knowing whether the provider got "
        "it (the worker stopped mid-send, or no answer came); the person may get it twice."
    )
    provider: str | None = Field(
        description="The channel adapter that sent it (or last tried), by its registered name: "
        "`smtp`, `twilio-sms`, `webhook`, `capture`...; null before any attempt."
    )
    provider_id: str | None = Field(
        description="The provider's id for the message (an e-mail's Message-ID, a Twilio "
        "SID); status callbacks find the delivery by it. Null until sent."
    )
    error_code: str | None = Field(
        description="The last failed attempt's error code, as the adapter gave it (an SMTP "
        "reply code, a Twilio error code); null if no attempt failed."
    )
    error: str | None = Field(
        description="The last failed attempt's error message, for people; null if none."
    )
    created_at: dt.datetime = Field(description="When the fan-out planned it (UTC).")
    updated_at: dt.datetime = Field(description="When its state or fields last changed (UTC).")
    sent_at: dt.datetime | None = Field(
        description="When the provider accepted it (UTC); null until then."
    )
    not_before: dt.datetime | None = Field(
        description="A deferred or retried delivery waits until then (quiet hours, caps...)."
    )


class NotificationOut(NotificationSummary):
    """A notification read back: its state, counts, a page of its deliveries, engagement."""

    by_channel: dict[str, dict[str, int]] = Field(description="Deliveries by channel and state.")
    deliveries: Page[DeliveryOut] = Field(
        description="A page of its deliveries, oldest first (filtered by the request's "
        "`state` and `channel`); follow `next_cursor` with `cursor` for more."
    )
    engagement: EngagementOut = Field(
        description="Opens, clicks and unsubscribes, people apart from machines."
    )
