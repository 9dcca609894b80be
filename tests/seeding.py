"""Bulk rows for large audiences (crash tests, benchmarks): Core inserts, no API round trips."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, insert

from hub.db.models import Contact, Subscription, Topic


def topic(db: Connection, key: str, channels: Sequence[str], *, now: dt.datetime) -> int:
    """A public, non-required topic for everyone, allowing `channels`; its id."""
    row = {
        "key": key, "name": key.title(), "description": None, "audience": "all",
        "allowed_channels": list(channels), "default_channels": [channels[0]],
        "allowed_frequencies": ["immediate"], "public": True, "required": False,
        "bypass_quiet_hours": False, "created_at": now, "updated_at": now,
    }  # fmt: skip
    return int(db.execute(insert(Topic).returning(Topic.id), [row]).scalar_one())


def subscribers(
    db: Connection, topic_id: int, people: Iterable[dict[str, Any]], *, now: dt.datetime
) -> None:
    """Contacts (each a dict of contact fields plus `id` and `channels`) subscribed to the topic."""
    contacts, subscriptions = [], []
    for person in people:
        fields = dict(person)
        channels = fields.pop("channels")
        contacts.append({
            "kind": "client", "name": None, "email": None, "phone": None, "webhook_url": None,
            "locale": None, "timezone": "UTC", "attributes": {}, "created_at": now,
            "updated_at": now, **fields,
        })  # fmt: skip
        subscriptions.append({
            "contact_id": fields["id"], "topic_id": topic_id, "status": "subscribed",
            "channels": channels, "frequency": "immediate", "consent_source": "seed",
            "consent_actor": "seed", "consent_at": now, "created_at": now, "updated_at": now,
        })  # fmt: skip
    if contacts:
        db.execute(insert(Contact), contacts)
        db.execute(insert(Subscription), subscriptions)
