"""/v1/contacts/{external_id}/subscriptions and /preferences: what a person wants, and how."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from hub.api.routes.contacts import ExternalIdPath
from hub.api.routes.topics import KeyPath
from hub.db.models import ContactPreferences
from hub.schemas.errors import ErrorOut
from hub.schemas.subscriptions import (
    PreferencesOut,
    PreferencesPatch,
    SubscriptionIn,
    SubscriptionOut,
)
from hub.services import contact_preferences, contacts, subscriptions, topics
from hub.web.deps import ContactsScope, RuntimeDep, SessionDep, actor_for

router = APIRouter(prefix="/v1/contacts/{external_id}", tags=["subscriptions"])


@router.get("/subscriptions", response_model=list[SubscriptionOut])
def list_subscriptions(external_id: ExternalIdPath, _: ContactsScope, db: SessionDep) -> Any:
    """Every topic the contact chose, plus required topics of their audience (implicit)."""
    return subscriptions.all_for(db, contacts.get(db, external_id))


@router.get("/subscriptions/{topic}", response_model=SubscriptionOut)
def get_subscription(
    external_id: ExternalIdPath, topic: KeyPath, _: ContactsScope, db: SessionDep
) -> Any:
    contact, found = contacts.get(db, external_id), topics.get(db, topic)
    return subscriptions.view(found, subscriptions.find(db, contact, found))


@router.put(
    "/subscriptions/{topic}",
    response_model=SubscriptionOut,
    responses={
        201: {"model": SubscriptionOut, "description": "Created"},
        409: {
            "model": ErrorOut,
            "description": "A required topic cannot be unsubscribed; or the person "
            "unsubscribed themselves within HUB_COOL_DOWN_DAYS",
        },
    },
)
def put_subscription(
    external_id: ExternalIdPath,
    topic: KeyPath,
    body: SubscriptionIn,
    request: Request,
    response: Response,
    principal: ContactsScope,
    db: SessionDep,
    runtime: RuntimeDep,
) -> Any:
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
    response_model=SubscriptionOut,
    responses={409: {"model": ErrorOut, "description": "A required topic cannot be unsubscribed"}},
)
def unsubscribe(
    external_id: ExternalIdPath,
    topic: KeyPath,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
) -> Any:
    """Unsubscribe. The row stays, with its consent evidence, so the refusal is remembered."""
    contact, found = contacts.get(db, external_id, lock=True), topics.get(db, topic)
    outcome = subscriptions.unsubscribe(db, contact, found, actor_for(request, principal))
    db.commit()
    return outcome.subscription


@router.get("/preferences", response_model=PreferencesOut)
def get_preferences(external_id: ExternalIdPath, _: ContactsScope, db: SessionDep) -> Any:
    contact = contacts.get(db, external_id)
    return contact_preferences.view(db.get(ContactPreferences, contact.id))


@router.patch("/preferences", response_model=PreferencesOut)
def patch_preferences(
    external_id: ExternalIdPath,
    body: PreferencesPatch,
    request: Request,
    principal: ContactsScope,
    db: SessionDep,
) -> Any:
    contact = contacts.get(db, external_id, lock=True)
    result = contact_preferences.patch(db, contact, body, actor_for(request, principal))
    db.commit()
    return result
