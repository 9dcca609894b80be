"""/v1/contacts/{external_id}/subscriptions and /preferences: what a person wants, and how."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response

from hub.api import errors
from hub.api.routes.contacts import ExternalIdPath
from hub.api.routes.topics import KeyPath
from hub.db.models import ContactPreferences
from hub.schemas.subscriptions import (
    PREFERENCES_EXAMPLE,
    SUBSCRIPTION_EXAMPLE,
    SUBSCRIPTION_OUT_EXAMPLE,
    PreferencesOut,
    PreferencesPatch,
    SubscriptionIn,
    SubscriptionOut,
)
from hub.services import contact_preferences, contacts, subscriptions, topics
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep, actor_for

router = APIRouter(prefix="/v1/contacts/{external_id}", tags=["subscriptions"])

NO_CONTACT = errors.not_found("No contact has this external_id")
NO_SUBSCRIPTION = errors.not_found("No contact has this external_id, or no topic this key")
NEVER_CHOSEN = errors.not_found(
    "No contact has this external_id, no topic this key, or the contact never chose the "
    "topic (and it is not required)"
)
REQUIRED = "A required topic cannot be unsubscribed"
SubscriptionBody = Annotated[
    SubscriptionIn,
    Body(
        openapi_examples={
            "channels": {
                "summary": "Subscribe, by e-mail first, then SMS",
                "value": SUBSCRIPTION_EXAMPLE,
            },
            "defaults": {
                "summary": "Subscribe on the topic's default channels",
                "value": {},
            },
            "unsubscribe": {
                "summary": "Unsubscribe, keeping the consent evidence",
                "value": {"status": "unsubscribed"},
            },
        }
    ),
]
PreferencesBody = Annotated[
    PreferencesPatch,
    Body(openapi_examples={"quiet": {"summary": "Quiet nights", "value": PREFERENCES_EXAMPLE}}),
]


@router.get(
    "/subscriptions",
    operation_id="subscriptions.list",
    summary="List a contact's subscriptions",
    response_model=list[SubscriptionOut],
    responses=NO_CONTACT,
)
def list_subscriptions(external_id: ExternalIdPath, _: ContactsScope, db: SessionDep) -> Any:
    """Every topic the contact chose, plus required topics of their audience (implicit).

    Unsubscribed topics are listed too, with their consent evidence. Needs the `contacts`
    scope."""
    return subscriptions.all_for(db, contacts.get(db, external_id))


@router.get(
    "/subscriptions/{topic}",
    operation_id="subscriptions.get",
    summary="Read a contact's subscription to a topic",
    response_model=SubscriptionOut,
    responses=NEVER_CHOSEN,
)
def get_subscription(
    external_id: ExternalIdPath, topic: KeyPath, _: ContactsScope, db: SessionDep
) -> Any:
    """The status, channels and frequency of the contact's subscription to the topic, and
    its consent evidence. A required topic never chosen reads as implicitly subscribed; any
    other topic never chosen is a 404. Needs the `contacts` scope."""
    contact, found = contacts.get(db, external_id), topics.get(db, topic)
    return subscriptions.view(found, subscriptions.find(db, contact, found))


@router.put(
    "/subscriptions/{topic}",
    operation_id="subscriptions.put",
    summary="Subscribe a contact to a topic, or change the subscription",
    response_model=SubscriptionOut,
    responses={
        200: {
            "description": "Changed",
            "content": {"application/json": {"example": SUBSCRIPTION_OUT_EXAMPLE}},
        },
        201: {
            "model": SubscriptionOut,
            "description": "Created",
            "content": {"application/json": {"example": SUBSCRIPTION_OUT_EXAMPLE}},
        },
        **NO_SUBSCRIPTION,
        **errors.conflict(
            f"{REQUIRED}; or the person unsubscribed themselves within HUB_COOL_DOWN_DAYS; "
            "or it was changed concurrently (retry)"
        ),
        **errors.TOO_LARGE,
    },
)
def put_subscription(
    external_id: ExternalIdPath,
    topic: KeyPath,
    body: SubscriptionBody,
    request: Request,
    response: Response,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
    """Set the status, channels (in order of preference) and frequency.

    201 when the contact had no subscription to the topic, 200 otherwise. Channels default
    to the current choice, else to the topic's default channels the contact has an address
    for. The change, with its consent evidence (the key's name), is written on the timeline.
    Needs the `contacts` scope."""
    contact, found = contacts.get(db, external_id, lock=True), topics.get(db, topic)
    outcome = subscriptions.put(
        db,
        contact,
        found,
        body,
        actor_for(request, principal),
        cool_down=dt.timedelta(days=runtime.settings.cool_down_days),
    )
    db.commit()
    response.status_code = 201 if outcome.created else 200
    return outcome.subscription


@router.delete(
    "/subscriptions/{topic}",
    operation_id="subscriptions.unsubscribe",
    summary="Unsubscribe a contact from a topic",
    response_model=SubscriptionOut,
    responses={**NO_SUBSCRIPTION, **errors.conflict(REQUIRED)},
)
def unsubscribe(
    external_id: ExternalIdPath,
    topic: KeyPath,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
) -> Any:
    """Unsubscribe. The row stays, with its consent evidence, so the refusal is remembered.

    Written on the timeline with the key's name. Needs the `contacts` scope."""
    contact, found = contacts.get(db, external_id, lock=True), topics.get(db, topic)
    outcome = subscriptions.unsubscribe(db, contact, found, actor_for(request, principal))
    db.commit()
    return outcome.subscription


@router.get(
    "/preferences",
    operation_id="preferences.get",
    summary="Read a contact's preferences",
    response_model=PreferencesOut,
    responses=NO_CONTACT,
)
def get_preferences(external_id: ExternalIdPath, _: ContactsScope, db: SessionDep) -> Any:
    """What holds across every topic: channels never to use, quiet hours, when digests
    arrive, unsubscribed from everything, tracking off. Needs the `contacts` scope."""
    contact = contacts.get(db, external_id)
    return contact_preferences.view(db.get(ContactPreferences, contact.id))


@router.patch(
    "/preferences",
    operation_id="preferences.update",
    summary="Change some of a contact's preferences",
    response_model=PreferencesOut,
    responses={**NO_CONTACT, **errors.TOO_LARGE},
)
def patch_preferences(
    external_id: ExternalIdPath,
    body: PreferencesBody,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
) -> Any:
    """Only the fields sent change; null clears quiet hours or the digest time. The change
    is written on the timeline with the key's name. Needs the `contacts` scope."""
    contact = contacts.get(db, external_id, lock=True)
    result = contact_preferences.patch(db, contact, body, actor_for(request, principal))
    db.commit()
    return result
