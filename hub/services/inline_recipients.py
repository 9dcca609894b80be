"""Recipients named inline on a notification: created or changed on the way in, in bulk.

The same merge and the same timeline events as `PUT` (a new person) and `PATCH` (one who
exists) through the contacts API, for many people at once: one locked lookup per thousand,
one multi-row INSERT of the new, one executemany UPDATE of the changed, one INSERT of events.
An erased person's external id names nobody any more, so it is created afresh, as `PUT`
does: a new id, and their old addresses still on the suppression list as hashes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact
from hub.domain import EventType
from hub.schemas.contacts import CONTACT_FIELDS, ContactIn
from hub.schemas.notifications import Recipient, RecipientIn
from hub.services import bulk_insert, timeline
from hub.services.actor import Actor
from hub.services.contacts import changes, check_webhook_target, merged
from hub.services.errors import Forbidden

_CHUNK = 1000
_TABLE = cast(Table, Contact.__table__)
_STATE = (*CONTACT_FIELDS, "attributes")
# Locked (PostgreSQL): each change's "before" is then the state it really replaced, as
# `contacts.patch` does; taken in external-id order, so two requests cannot deadlock.
_SELECT = (
    select(_TABLE.c.id, _TABLE.c.external_id, *(_TABLE.c[name] for name in _STATE))
    .where(_TABLE.c.external_id.in_(bindparam("external_ids", expanding=True)))
    .order_by(_TABLE.c.external_id)
    .with_for_update()
)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("_id"))
    .values({name: bindparam(f"_{name}") for name in (*_STATE, "updated_at")})
)


def is_plain(recipients: Sequence[Recipient]) -> bool:
    """Every recipient named by external id only: the path that needs no upsert."""
    return all(isinstance(r, str) for r in recipients)


def check(recipients: Sequence[Recipient], *, allow_private_webhooks: bool) -> None:
    """What the schema cannot know: a webhook URL to a private address (unless allowed).

    Raises:
        InvalidField: naming the recipient, `recipients[2].webhook_url`.
    """
    for index, recipient in enumerate(recipients):
        if isinstance(recipient, RecipientIn) and recipient.webhook_url is not None:
            check_webhook_target(
                recipient.webhook_url,
                allow_private=allow_private_webhooks,
                field=f"recipients[{index}].webhook_url",
            )


def combine(into: dict[str, dict[str, Any]], recipients: Iterable[Recipient]) -> None:
    """Add each inline recipient's given fields to `into` (external id -> fields), the later
    naming of a person over the earlier, as two PATCHes in turn would leave them (so an
    attribute set to null by the later one is still removed)."""
    for recipient in recipients:
        if not isinstance(recipient, str):
            add(into, recipient.external_id, recipient.given())


def add(into: dict[str, dict[str, Any]], external_id: str, given: dict[str, Any]) -> None:
    """One naming of a person over what earlier ones gave (see `combine`)."""
    earlier = into.get(external_id)
    if earlier is None:
        into[external_id] = given
        return
    if "attributes" in earlier and "attributes" in given:
        given = given | {"attributes": earlier["attributes"] | given["attributes"]}
    into[external_id] = earlier | given


def upsert(
    session: Session,
    wanted: dict[str, dict[str, Any]],
    actor: Actor,
    *,
    may_change: bool = True,
) -> dict[str, int]:
    """Create the people who are missing and change the given fields of those who exist;
    each creation and change is on their timeline. Returns external id -> contact id.

    Without `may_change` (a key with the `notify` scope but not `contacts`) an existing
    person may be named with the fields they already have, never changed: a key meant to
    send must not be able to re-point someone's e-mail or webhook at another address.

    Raises:
        Forbidden: an existing person would change and `may_change` is False.

    A concurrent request creating one of the same people first makes our INSERT fail; it is
    undone (a savepoint) and the people planned again, now as changes.
    """
    ids: dict[str, int] = {}
    remaining = dict(wanted)
    for attempt in (1, 2):
        new = _change_existing(session, remaining, ids, actor, may_change=may_change)
        if not new:
            break
        try:
            with session.begin_nested():
                _create(session, new, ids, actor)
        except IntegrityError:
            if attempt == 2:
                raise
            remaining = {external_id: remaining[external_id] for external_id in new}
            continue
        break
    return ids


def _change_existing(
    session: Session,
    wanted: dict[str, dict[str, Any]],
    ids: dict[str, int],
    actor: Actor,
    *,
    may_change: bool,
) -> dict[str, dict[str, Any]]:
    """Apply the changes to the people who exist (filling `ids`); the rest, to create."""
    now = utcnow()
    ordered = sorted(wanted)
    dirty: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for start in range(0, len(ordered), _CHUNK):
        rows = session.execute(_SELECT, {"external_ids": ordered[start : start + _CHUNK]})
        for row in rows:
            ids[row.external_id] = row.id
            before = dict(zip(_STATE, row[2:], strict=True))
            before["attributes"] = dict(before["attributes"] or {})
            after = merged(before, wanted[row.external_id])
            delta = changes(before, after)
            if not delta:
                continue
            if not may_change:
                raise Forbidden(
                    f"recipients: contact {row.external_id!r} exists and this would change "
                    f"its {', '.join(sorted(delta))}; that needs an API key with the "
                    "'contacts' scope (or name them by external id alone)",
                    details=[
                        {"field": "recipients", "message": f"would change {row.external_id!r}"}
                    ],
                )
            dirty.append({"_id": row.id, "_updated_at": now} | {f"_{k}": after[k] for k in _STATE})
            events.append(
                timeline.event_row(
                    contact_id=row.id,
                    type=EventType.CONTACT_UPDATED,
                    actor=actor,
                    at=now,
                    changes=delta,
                )
            )
    if dirty:
        session.execute(_UPDATE, dirty)
    timeline.record_many(session, events)
    return {external_id: wanted[external_id] for external_id in ordered if external_id not in ids}


_DEFAULTS = ContactIn().model_dump()


def _create(
    session: Session, new: dict[str, dict[str, Any]], ids: dict[str, int], actor: Actor
) -> None:
    now = utcnow()
    values = {
        external_id: merged({**_DEFAULTS, "attributes": {}}, given)
        for external_id, given in new.items()
    }
    rows = [
        {"external_id": external_id, "created_at": now, "updated_at": now} | fields
        for external_id, fields in values.items()
    ]
    created = bulk_insert.ids_in_order(session, _TABLE, rows)
    events = []
    for external_id, contact_id in zip(values, created, strict=True):
        ids[external_id] = contact_id
        events.append(
            timeline.event_row(
                contact_id=contact_id,
                type=EventType.CONTACT_CREATED,
                actor=actor,
                at=now,
                changes=changes({}, values[external_id]),
            )
        )
    timeline.record_many(session, events)
