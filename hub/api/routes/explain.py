"""Explain a decision: `GET /v1/deliveries/{id}/explain`, `GET /v1/contacts/{id}/explain`."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from hub.api import errors
from hub.db.base import utcnow
from hub.dispatch import explain
from hub.fields import Key
from hub.services import contacts, topics
from hub.services.errors import InvalidField
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep
from hub.web.paging import RowId

router = APIRouter(tags=["explain"])
_REACH = dt.timedelta(days=36_525)


class RuleOut(BaseModel):
    """One rule and what it decided."""

    rule: str = Field(
        description="The rule: local_time, throttle, a resolver rule (subscription, "
        "suppression, quiet hours, a cap, ...)."
    )
    verdict: str = Field(description="What it decided, e.g. `pass`, `defer`.")
    detail: str = Field(description="Why, in words.")
    channel: str | None = Field(description="The channel it concerned; null: all of them.")


class ChainStepOut(BaseModel):
    """One step of a person's escalation chain."""

    step: int = Field(description="Its place in the chain, from 0.")
    channel: str = Field(description="The step's channel: email, sms, voice or webhook.")
    after_seconds: float = Field(description="How long it waits after the step before it.")
    unless: str = Field(description="What an earlier step must do for it not to go.")
    delivery_id: int | None = Field(description="None: not one of the person's channels.")
    state: str | None = Field(description="Its delivery's state now, if it has one.")
    outcome: str = Field(
        description="skipped, first, waiting, went, stopped, or the delivery's state."
    )
    detail: str = Field(
        description="What happened, in words: 'went: the e-mail was not opened within 1 "
        "day', 'stopped: opened at 2026-07-01 10:05:00 UTC (the e-mail, step 0)'."
    )


class DeliveryExplained(BaseModel):
    """Why a delivery went (or did not) as it did."""

    delivery: dict[str, Any] = Field(
        description="What was recorded: its notification, contact, channel, state, reason, "
        "due time, attempts, provider and last error."
    )
    topic: str = Field(description="Its notification's topic (the key).")
    evaluated_at: dt.datetime = Field(description="The moment of its decision (UTC).")
    rules: list[RuleOut] = Field(
        description="Each rule at that moment, with the person's data as it is now."
    )
    note: str = Field(description="How to read the rules.")
    escalation: list[ChainStepOut] | None = Field(
        None,
        description="The person's escalation chain for this notification (None: it has "
        "none): each step, its wait, its condition and what happened.",
    )


class ContactExplained(BaseModel):
    """Which channels a message on a topic would use for a person, and why."""

    contact: str = Field(description="The contact's external_id.")
    topic: str = Field(description="The topic's key.")
    evaluated_at: dt.datetime = Field(description="The moment decided for (UTC).")
    outcome: dict[str, Any] = Field(
        description="`send_now`: the channels it would go on now; `deferred`: channels held, "
        "`until` when and why; `refused`: channels it would not go on, and why."
    )
    rules: list[RuleOut] = Field(description="Each rule that applied.")


@router.get(
    "/v1/deliveries/{delivery_id}/explain",
    operation_id="deliveries.explain",
    summary="Explain a delivery",
    response_model=DeliveryExplained,
    responses=errors.not_found("No delivery has this id"),
)
def explain_delivery(
    delivery_id: RowId, _: ContactsScope, db: SessionDep, runtime: RuntimeDep
) -> Any:
    """What was recorded for the delivery, each rule that applied to it, and the person's
    escalation chain of its notification when it has one. Needs the `contacts` scope."""
    return explain.for_delivery(
        db, delivery_id, hasher=runtime.hasher, caps=runtime.settings.default_caps()
    )


@router.get(
    "/v1/contacts/{external_id}/explain",
    operation_id="contacts.explain",
    summary="Explain which channels a message to a contact would use",
    response_model=ContactExplained,
    responses=errors.not_found("No contact has this external_id, or no topic the key `topic`"),
)
def explain_contact(
    external_id: Annotated[str, Path(description="The caller's own id for the person.")],
    topic: Annotated[Key, Query(description="The topic to decide for.")],
    _: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
    at: Annotated[dt.datetime | None, Query(description="The moment; now by default.")] = None,
) -> Any:
    """Which channels a message on this topic would use at that moment, and why: each
    rule (subscription, suppression, quiet hours, caps, ...) and its verdict. Writes nothing.
    Needs the `contacts` scope."""
    now = utcnow()
    if at is not None and at.tzinfo is None:
        raise InvalidField("at", "needs a time zone, e.g. 2026-12-01T09:00:00Z")
    if at is not None and not now - _REACH <= at <= now + _REACH:
        # The rules look days ahead and behind (quiet hours, digests, caps): near year 1 or
        # 9999 that arithmetic leaves the calendar.
        raise InvalidField("at", "must be within 100 years of now")
    contact = contacts.get(db, external_id)
    found = topics.get(db, topic)
    return explain.for_contact(
        db,
        contact,
        found,
        at=at or now,
        hasher=runtime.hasher,
        caps=runtime.settings.default_caps(),
    )
