"""The staff audit log: who changed which template, topic, segment, campaign, user, key or
event endpoint, when, and what it was before and after. Every service that changes one of
those calls `record` in the same transaction as the change."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import AuditEntry
from hub.services.actor import Actor

SECRET_FIELDS = frozenset({"password", "password_hash", "token_hash", "secret", "signing_secret"})


class Resource(enum.StrEnum):
    TEMPLATE = "template"
    TOPIC = "topic"
    SEGMENT = "segment"
    CAMPAIGN = "campaign"
    STAFF_USER = "staff_user"
    API_KEY = "api_key"
    EVENT_ENDPOINT = "event_endpoint"
    NOTIFICATION = "notification"  # a scheduled one cancelled from the console
    TEAM = "team"


class Action(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"
    RESTORED = "restored"  # a template version brought back
    SCHEDULED = "scheduled"
    APPROVED = "approved"
    PAUSED = "paused"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    DISABLED = "disabled"
    ENABLED = "enabled"
    REVOKED = "revoked"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - an action, not a secret
    SIGNED_OUT = "signed_out"  # every session of a staff user ended by another


def record(
    session: Session,
    *,
    actor: Actor,
    action: Action,
    resource: Resource,
    key: str,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> None:
    """Add the entry to the session (the caller commits it with the change). Secret fields
    are never kept, even hashed."""
    session.add(
        AuditEntry(
            at=utcnow(),
            actor_kind=actor.kind,
            actor=actor.name,
            action=action.value,
            resource=resource.value,
            resource_key=key[:255],
            before=_kept(before),
            after=_kept(after),
        )
    )


def page(
    session: Session,
    *,
    before_id: int | None,
    limit: int,
    resource: Resource | None = None,
    key: str | None = None,
) -> list[AuditEntry]:
    """Newest first; a resource (and its key) narrows it."""
    query = select(AuditEntry)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    if resource is not None:
        query = query.where(AuditEntry.resource == resource.value)
    if key is not None:
        query = query.where(AuditEntry.resource_key == key)
    return list(session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit)))


def _kept(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if k not in SECRET_FIELDS}
