"""What employees were told of a client who is then erased (`contacts.erase`): their
notifications (`Notification.about_contact_id`, made by `client_events.forward`) keep no
word of the person, so a digest still waiting says only that they were erased."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hub.db.models import Notification

# What an employee's message says of a client who has since been erased.
ERASED: dict[str, Any] = {
    "client": {"name": "A client since erased", "external_id": "erased", "profile": ""},
    "headline": "was erased",
    "what": "this client has been erased; what they did is no longer kept",
    "event": None,
    "reason": None,
    "at": None,
}


def forget(session: Session, contact_id: int) -> list[int]:
    """Blank what employees' notifications say of an erased client (a digest still waiting
    then says only that); the ids of those notifications, whose captured copies go too."""
    told = list(
        session.scalars(select(Notification.id).where(Notification.about_contact_id == contact_id))
    )
    if told:
        session.execute(update(Notification).where(Notification.id.in_(told)).values(data=ERASED))
    return told
