"""Contacts: upsert by external id, partial update, lookup, filtered listing and erasure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, String, cast, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.channels import webhook_urls
from hub.db.base import utcnow
from hub.db.models import (
    Capture,
    Contact,
    Delivery,
    Erasure,
    Subscription,
    Suppression,
    Team,
    TeamMember,
    Topic,
)
from hub.domain import (
    ADDRESS_FIELD,
    Channel,
    ContactKind,
    EventType,
    SubscriptionStatus,
    SuppressionReason,
)
from hub.fields import normalize_external_id
from hub.schemas.contacts import CONTACT_FIELDS, ContactIn
from hub.services import contact_care, erased_clients, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField, NotFound
from hub.services.hashing import AddressHasher
from hub.services.timeline import Changes


def _select(external_id: str, *, lock: bool) -> Select[Contact]:
    # Normalised here too, for callers that did not come through a schema (the CLI, paths).
    query = select(Contact).where(Contact.external_id == normalize_external_id(external_id))
    return query.with_for_update() if lock else query


def get(session: Session, external_id: str, *, lock: bool = False) -> Contact:
    """The contact; `lock` holds its row until commit (PostgreSQL), which serialises every
    change to the person, so each event's "before" is the state the change really replaced."""
    contact = session.scalar(_select(external_id, lock=lock))
    if contact is None:
        raise NotFound(f"no contact with external_id {external_id!r}")
    return contact


def state(contact: Contact) -> dict[str, Any]:
    """The fields a caller controls, as plain values (what events record)."""
    values = {name: getattr(contact, name) for name in CONTACT_FIELDS}
    values["attributes"] = dict(contact.attributes)
    return values


def merged(current: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Apply given fields over current ones; attributes merge key by key, null removes a key."""
    result = {**current, **given}
    if "attributes" in given:
        attributes = {**current.get("attributes", {}), **given["attributes"]}
        result["attributes"] = {k: v for k, v in attributes.items() if v is not None}
    return result


def changes(before: dict[str, Any], after: dict[str, Any]) -> Changes:
    """Field changes, with attributes reported per key (`attributes.plan`)."""
    plain = {k: v for k, v in after.items() if k != "attributes"}
    result = timeline.diff({k: before.get(k) for k in plain}, plain)
    old, new = before.get("attributes") or {}, after.get("attributes") or {}
    for key in sorted(old.keys() | new.keys()):
        if old.get(key) != new.get(key):
            result[f"attributes.{key}"] = {"before": old.get(key), "after": new.get(key)}
    return result


def check_webhook_target(
    url: str | None, *, allow_private: bool, field: str = "webhook_url"
) -> None:
    """Refuse private targets at save time, reading the URL exactly as the webhook channel
    does when it sends (which checks again, and the transport once more per address)."""
    if url is None:
        return
    try:
        target = webhook_urls.parse(url)
    except webhook_urls.InvalidWebhookUrl as exc:
        raise InvalidField(field, str(exc)) from exc
    if not allow_private and target.forbidden:
        raise InvalidField(
            field,
            "points to a private, loopback or link-local address; "
            "set HUB_WEBHOOK_ALLOW_PRIVATE=true to allow it",
        )


def put(
    session: Session,
    external_id: str,
    given: dict[str, Any],
    actor: Actor,
    *,
    allow_private_webhooks: bool,
    care: Mapping[str, Any] | None = None,
) -> tuple[Contact, bool]:
    """Create or replace a contact (fields left out return to their defaults; `owner` and
    `teams` change only when given); returns it and whether it was created."""
    check_webhook_target(given.get("webhook_url"), allow_private=allow_private_webhooks)
    external_id = normalize_external_id(external_id)
    wanted = contact_care.resolve(session, external_id, care or {})
    contact = session.scalar(_select(external_id, lock=True))
    if contact is None:
        created = _create(session, external_id, given, actor, wanted)
        if created is not None:
            return created, True
        contact = get(session, external_id, lock=True)  # lost a race with a concurrent create
    _update(session, contact, merged(ContactIn().model_dump(), given), actor, wanted)
    return contact, False


def patch(
    session: Session,
    external_id: str,
    given: dict[str, Any],
    actor: Actor,
    *,
    allow_private_webhooks: bool,
    care: Mapping[str, Any] | None = None,
) -> Contact:
    """Change only the given fields of an existing contact; attributes merge key by key."""
    check_webhook_target(given.get("webhook_url"), allow_private=allow_private_webhooks)
    contact = get(session, external_id, lock=True)
    wanted = contact_care.resolve(session, contact.external_id, care or {})
    _update(session, contact, merged(state(contact), given), actor, wanted)
    return contact


def _update(
    session: Session,
    contact: Contact,
    after: dict[str, Any],
    actor: Actor,
    care: contact_care.Care = contact_care.NOTHING,
) -> None:
    was = (
        contact_care.state_of(session, contact)
        if care.given or after["kind"] != contact.kind
        else None
    )
    now_care = contact_care.after_change(was, care) if was is not None else None
    if now_care is not None:
        contact_care.check_kind(session, contact, after["kind"], now_care.owner_id, care)
    delta = changes(state(contact), after)
    if was is not None and now_care is not None:
        delta |= contact_care.changes_of(was, now_care)
    if not delta:
        return
    for name, value in after.items():
        setattr(contact, name, value)
    if now_care is not None:
        contact.owner_id = now_care.owner_id
    contact.updated_at = utcnow()
    session.flush()
    timeline.record(
        session,
        contact_id=contact.id,
        type=EventType.CONTACT_UPDATED,
        actor=actor,
        changes=delta,
    )
    if was is not None and now_care is not None:
        contact_care.write(session, contact, before=was, after=now_care, care=care, actor=actor)


def _create(
    session: Session,
    external_id: str,
    given: dict[str, Any],
    actor: Actor,
    care: contact_care.Care = contact_care.NOTHING,
) -> Contact | None:
    values = merged(ContactIn().model_dump(), given)
    none = contact_care.CareState(None, None)
    wanted = contact_care.after_change(none, care)
    contact_care.check_kind(session, None, values["kind"], wanted.owner_id, care)
    now = utcnow()
    contact = Contact(
        external_id=external_id,
        created_at=now,
        updated_at=now,
        owner_id=wanted.owner_id,
        **values,
    )
    try:
        with session.begin_nested():
            session.add(contact)
    except IntegrityError:
        return None
    timeline.record(
        session,
        contact_id=contact.id,
        type=EventType.CONTACT_CREATED,
        actor=actor,
        at=now,
        changes=changes({}, values) | contact_care.changes_of(none, wanted),
    )
    contact_care.write(session, contact, before=none, after=wanted, care=care, actor=actor)
    return contact


@dataclass(frozen=True)
class Filters:
    kind: ContactKind | None = None
    topic: str | None = None
    email: str | None = None
    phone: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    owner: str | None = None  # an employee's external_id: their clients
    team: str | None = None  # a team's key: its members


def page(session: Session, filters: Filters, *, after_id: int | None, limit: int) -> list[Contact]:
    """Oldest first. An `owner` or `team` that does not exist is a 422 naming it, so a typo
    is not read as "this manager has no clients"."""
    query = select(Contact)
    if filters.owner is not None:
        owner_id = session.scalar(
            select(Contact.id).where(Contact.external_id == normalize_external_id(filters.owner))
        )
        if owner_id is None:
            raise InvalidField("owner", f"no contact with external_id {filters.owner!r}")
        query = query.where(Contact.owner_id == owner_id)  # contacts.owner_id is indexed
    if filters.team is not None:
        team_id = session.scalar(select(Team.id).where(Team.key == filters.team))
        if team_id is None:
            raise InvalidField("team", f"no team with key {filters.team!r}")
        query = query.where(
            Contact.id.in_(select(TeamMember.contact_id).where(TeamMember.team_id == team_id))
        )
    if filters.kind is not None:
        query = query.where(Contact.kind == filters.kind)
    if filters.email is not None:
        query = query.where(Contact.email == filters.email)
    if filters.phone is not None:
        query = query.where(Contact.phone == filters.phone)
    for key, value in filters.attributes:
        # Compare the JSON value's text, so "42" matches both 42 and "42" on every backend.
        query = query.where(cast(Contact.attributes[key].as_string(), String) == value)
    if filters.topic is not None:
        query = query.where(
            Contact.id.in_(
                select(Subscription.contact_id)
                .join(Topic, Topic.id == Subscription.topic_id)
                .where(
                    Topic.key == filters.topic, Subscription.status == SubscriptionStatus.SUBSCRIBED
                )
            )
        )
    if after_id is not None:
        query = query.where(Contact.id > after_id)
    return list(session.scalars(query.order_by(Contact.id).limit(limit)))


@dataclass(frozen=True)
class ErasureReport:
    external_id: str
    suppressions_added: int
    erased_at: str


def erase(session: Session, external_id: str, actor: Actor, hasher: AddressHasher) -> ErasureReport:
    """Remove the person's data, timeline included, keeping only keyed hashes of their addresses.

    The hashes sit on the suppression list (reason `erasure`), so re-importing the address does
    not make it contactable for marketing again (RELIABILITY 16).
    """
    # Their deliveries are locked before the person: a worker recording an outcome holds the
    # delivery, then the person (its timeline row's key), and taking both in that same order
    # cannot deadlock with it (PostgreSQL; it did, as a 500).
    found = get(session, external_id)
    theirs = select(Delivery.id).where(Delivery.contact_id == found.id).order_by(Delivery.id)
    session.execute(theirs.with_for_update())
    contact = get(session, external_id, lock=True)
    now = utcnow()
    added = 0
    for channel, field in ADDRESS_FIELD.items():
        address = getattr(contact, field)
        if address:
            added += _suppress_erased(session, channel, address, hasher, actor=actor, at=now)
    session.add(
        Erasure(
            subject_hash=hasher.subject(external_id),
            erased_at=now,
            actor_kind=actor.kind,
            actor=actor.name,
            suppressions_added=added,
        )
    )
    contact_care.erased(session, contact, actor, at=now)
    # Message bodies go too: the capture sink's copies (deliveries go with the contact).
    sent_to_them = select(Delivery.id).where(Delivery.contact_id == contact.id)
    session.execute(delete(Capture).where(Capture.delivery_id.in_(sent_to_them)))
    # And what employees were told of them, with the copies of it that were captured.
    told = erased_clients.forget(session, contact.id)
    if told:
        about_them = select(Delivery.id).where(Delivery.notification_id.in_(told))
        session.execute(delete(Capture).where(Capture.delivery_id.in_(about_them)))
    session.execute(delete(Contact).where(Contact.id == contact.id))
    return ErasureReport(
        external_id=external_id, suppressions_added=added, erased_at=now.isoformat()
    )


def _suppress_erased(
    session: Session,
    channel: Channel,
    address: str,
    hasher: AddressHasher,
    *,
    actor: Actor,
    at: Any,
) -> int:
    digest = hasher(channel, address)
    existing = session.scalar(
        select(Suppression)
        .where(Suppression.channel == channel, Suppression.address_hash == digest)
        .with_for_update()
    )
    if existing is not None:
        # Whatever kept the address before (a manual entry, a soft bounce that would lapse,
        # a STOP the person could lift), it is now an erased person's: kept for good and
        # never lifted (RELIABILITY 25). What it was is kept in the note, without the address.
        if existing.reason is SuppressionReason.ERASURE:
            existing.address = None
            return 0
        before = f"{existing.reason.value} since {existing.created_at:%Y-%m-%d}"
        existing.note = f"erased {at:%Y-%m-%d}; before: {before}"
        existing.reason = SuppressionReason.ERASURE
        existing.expires_at = None
        existing.address = None
        existing.source, existing.actor = actor.source, actor.name
        return 1
    session.execute(
        insert(Suppression),
        [
            {
                "channel": channel,
                "address": None,
                "address_hash": digest,
                "reason": SuppressionReason.ERASURE,
                "source": actor.source,
                "actor": actor.name,
                "note": None,
                "created_at": at,
                "expires_at": None,
            }
        ],
    )
    return 1
