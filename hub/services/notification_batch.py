"""Accept a batch of notifications: each item checked on its own, the accepted inserted together.

Bulk throughout, so a thousand items cost a handful of statements: one lookup of the keys
already used, one of the topics, one of the templates, contacts a thousand to a query, one
executemany of notifications (their ids in item order), one of events, one of idempotency
keys, the rows prepared for the driver with what the items share converted once
(hub.services.bulk_insert). An item's idempotency key is the single POST's (same table,
same hash of the same body), so a batch item replays a single POST and the other way round.
bench/api_batch.py measures it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Table, and_, bindparam, delete, select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import IdempotencyKey, Notification, Template, Topic
from hub.domain import NotificationState
from hub.schemas.notifications import BatchItem
from hub.services import bulk_insert, inline_recipients, notifications, timeline
from hub.services.actor import Actor
from hub.services.errors import Conflict, HubError, InvalidField
from hub.services.idempotency import ABANDONED_AFTER, KeyReused
from hub.services.notifications import Accepted
from hub.templates.isolation import RenderProcesses

_CHUNK = 1000
_TOPICS = cast(Table, Topic.__table__)
_TEMPLATES = cast(Table, Template.__table__)
_KEYS = cast(Table, IdempotencyKey.__table__)
_NOTIFICATIONS = cast(Table, Notification.__table__)
_TOPIC_ROWS = select(_TOPICS.c.id, _TOPICS.c.key, _TOPICS.c.allowed_channels).where(
    _TOPICS.c.key.in_(bindparam("keys", expanding=True))
)
_TEMPLATE_ROWS = select(_TEMPLATES.c.key, _TEMPLATES.c.variants, _TEMPLATES.c.version).where(
    _TEMPLATES.c.key.in_(bindparam("keys", expanding=True))
)
_KEY_ROWS = select(_KEYS).where(
    _KEYS.c.owner == bindparam("owner"), _KEYS.c.key.in_(bindparam("keys", expanding=True))
)
_DATETIME = TypeAdapter(dt.datetime)
# What `notifications.row` gives, inserted at the driver (see hub.services.bulk_insert).
_NOTIFICATION_COLUMNS = (
    "topic_id",
    "template_key",
    "template_version",
    "render_as_id",
    "variants",
    "data",
    "recipients",
    "channels",
    "escalation",
    "source",
    "state",
    "cursor",
    "held",
    "due_at",
    "send_at",
    "created_at",
)
_NOTIFICATION_ROWS = bulk_insert.DriverInsert(_NOTIFICATIONS, _NOTIFICATION_COLUMNS)
_JSON_COLUMNS = frozenset({"variants", "data", "recipients", "channels", "escalation"})
_KEY_COLUMNS = ("owner", "key", "request_hash", "status_code", "response", "created_at")
_KEY_ROWS_INSERT = bulk_insert.DriverInsert(_KEYS, _KEY_COLUMNS)
assert _KEY_ROWS_INSERT.columns == _KEY_COLUMNS  # the order `_insert` gives them in
# Inline contents remembered per batch: a batch usually repeats one or a few.
_DISTINCT_CONTENTS = 8
# The path a single POST hashes its body under: an item's key means the same thing.
SINGLE_PATH = "/v1/notifications"
# idempotency.request_hash's canonical JSON (a test holds the two to the same digest).
_CANONICAL = bulk_insert.json_encoder(sort_keys=True, separators=(",", ":"), default=str)


@dataclass(slots=True)
class Outcome:
    """One item's fate: accepted (`accepted`, and whether it was a replay) or `error`."""

    index: int
    accepted: Accepted | None = None
    replayed: bool = False
    error: HubError | None = None


@dataclass(slots=True)
class _Item:
    outcome: Outcome
    body: BatchItem
    digest: str | None = None
    plan: notifications.Plan | None = None
    topic_id: int = 0
    recipients: list[int] | None = None


def accept(
    session: Session,
    items: Sequence[tuple[int, BatchItem]],
    *,
    owner: str,
    source: str,
    actor: Actor,
    processes: RenderProcesses,
    allow_private_webhooks: bool = False,
    may_change_contacts: bool = True,
) -> list[Outcome]:
    """Check every item, insert the good ones; the caller commits (all of them, or nothing).

    `items` are (index in the request, the item as validated); the outcomes are in the same
    order. An error names fields within its item (`recipients`), as a single POST would.
    A concurrent request taking one of the same idempotency keys first makes the INSERT of
    keys fail with IntegrityError: the caller rolls back and calls again, once.
    """
    now = utcnow()
    work = [_Item(Outcome(index), body) for index, body in items]
    live = _claim_keys(session, work, owner=owner, now=now)
    live = _check(session, live, processes=processes, now=now)
    live = _resolve_recipients(
        session,
        live,
        actor=actor,
        allow_private_webhooks=allow_private_webhooks,
        may_change=may_change_contacts,
    )
    _insert(session, live, owner=owner, source=source, actor=actor, now=now)
    return [item.outcome for item in work]


def _reject(item: _Item, error: HubError) -> None:
    item.outcome.error = error


def _claim_keys(
    session: Session, work: list[_Item], *, owner: str, now: dt.datetime
) -> list[_Item]:
    """Settle each keyed item against the keys already used; the items still to do."""
    first: dict[str, int] = {}
    keyed: list[_Item] = []
    hashes = _Hashes()
    for item in work:
        key = item.body.idempotency_key
        if key is None:
            continue
        if key in first:
            _reject(item, _reused(f"item {first[key]} of this batch has the same key"))
            continue
        first[key] = item.outcome.index
        item.digest = hashes.digest(item.body)
        keyed.append(item)
    existing: dict[str, Any] = {}
    wanted = [cast(str, item.body.idempotency_key) for item in keyed]
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        existing.update(
            {row.key: row for row in session.execute(_KEY_ROWS, {"owner": owner, "keys": chunk})}
        )
    for item in keyed:
        row = existing.get(cast(str, item.body.idempotency_key))
        if row is None:
            continue
        if row.request_hash != item.digest:
            _reject(item, _reused("used before with another notification; use a new key"))
        elif row.status_code is not None and row.response is not None:
            answer = row.response
            item.outcome.accepted = Accepted(
                id=int(answer["id"]),
                state=NotificationState(answer["state"]),
                created_at=_DATETIME.validate_python(answer["created_at"]),
                send_at=_DATETIME.validate_python(answer["send_at"])
                if answer.get("send_at")
                else None,
            )
            item.outcome.replayed = True
        elif now - _aware(row.created_at) < ABANDONED_AFTER or not _take_over(session, row):
            _reject(
                item,
                Conflict("a request with this idempotency key is still in progress; retry shortly"),
            )
    return [item for item in work if _open(item)]


class _Hashes:
    """Each item's idempotency.request_hash("POST", SINGLE_PATH, <its body as a single POST
    would dump it>), with a prebuilt JSON encoder, and the inline content the items share
    dumped and encoded once: the item's JSON is encoded with a placeholder in its place,
    then the content's text put there (the keys sorted, only `channels`, a list of channel
    names, comes before `content`, so the placeholder's first occurrence is the one)."""

    def __init__(self) -> None:
        self._content: tuple[Any, str] | None = None  # the last content and its JSON

    def digest(self, body: BatchItem) -> str:
        if body.content is None:
            text = _CANONICAL(body.model_dump(mode="json", exclude=_NOT_HASHED))
        else:
            if self._content is None or self._content[0] != body.content:
                parts = body.model_dump(mode="json", include=_CONTENT)["content"]
                self._content = (body.content, _CANONICAL(parts))
            dumped = body.model_dump(mode="json", exclude=_NOT_HASHED_NOR_CONTENT)
            dumped["content"] = _PLACEHOLDER
            text = _CANONICAL(dumped).replace(_PLACEHOLDER_JSON, self._content[1], 1)
        return hashlib.sha256(f"POST {SINGLE_PATH}\n{text}".encode()).hexdigest()


_NOT_HASHED = {"idempotency_key"}  # the item's own: a single POST has none
_CONTENT = {"content"}
_NOT_HASHED_NOR_CONTENT = _NOT_HASHED | _CONTENT
_PLACEHOLDER = "\x00content"  # what any later field holds does not matter: see _Hashes
_PLACEHOLDER_JSON = bulk_insert.json_text(_PLACEHOLDER)


def _open(item: _Item) -> bool:
    return item.outcome.error is None and item.outcome.accepted is None


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _take_over(session: Session, row: Any) -> bool:
    """A reservation left by a request that died before answering: ours now."""
    gone = session.execute(
        delete(_KEYS).where(and_(_KEYS.c.id == row.id, _KEYS.c.created_at == row.created_at))
    )
    return bool(gone.rowcount == 1)  # type: ignore[attr-defined]


def _reused(message: str) -> KeyReused:
    return KeyReused(
        f"idempotency_key: {message}",
        details=[{"field": "idempotency_key", "message": message}],
    )


def _check(
    session: Session, live: list[_Item], *, processes: RenderProcesses, now: dt.datetime
) -> list[_Item]:
    """Each item against its topic and template (looked up once each), as a single POST is.

    Inline content is compiled and tried once per batch, not once per item: an item whose
    content equals one already checked here is checked as though that content were a stored
    template (channels, `send_at` and the rest still item by item), and shares its parts,
    so they are encoded once on insert.
    """
    topic_keys = sorted({item.body.topic for item in live})
    template_keys = sorted({item.body.template for item in live if item.body.template})
    topics = {row.key: row for row in _rows(session, _TOPIC_ROWS, topic_keys)}
    stored = {row.key: row for row in _rows(session, _TEMPLATE_ROWS, template_keys)}
    checked: list[tuple[Any, _Content]] = []  # (content as given, its parts), a few at most
    # Plans of items that add nothing of their own (no channels, escalation or send_at), by
    # topic and content or template: every such item after the first shares the plan.
    plans: dict[tuple[str, str | int], notifications.Plan] = {}
    for item in live:
        body = item.body
        topic = topics.get(body.topic)
        if topic is None:
            _reject(item, InvalidField("topic", f"no topic {body.topic!r}"))
            continue
        item.topic_id = topic.id
        plain = body.channels is None and body.escalation is None and body.send_at is None
        same: _Content | None = None
        if body.content is not None:
            place = next((n for n, (given, _) in enumerate(checked) if given == body.content), -1)
            same = checked[place][1] if place >= 0 else None
            source: str | int = place
        else:
            source = cast(str, body.template)
        if plain and same is not None and (body.topic, source) in plans:
            item.plan = plans[body.topic, source]
            continue
        try:
            if same is not None:
                as_stored = body.model_copy(update={"content": None, "template": "inline"})
                checked_plan = notifications.check(
                    as_stored, topic=topic, template=same, processes=processes, now=now
                )
                item.plan = replace(checked_plan, version=None)  # inline: no stored version
            else:
                template = stored.get(body.template) if body.template else None
                item.plan = notifications.check(
                    body, topic=topic, template=template, processes=processes, now=now
                )
                if body.content is not None and len(checked) < _DISTINCT_CONTENTS:
                    checked.append((body.content, _Content(item.plan.variants)))
                    source = len(checked) - 1
        except HubError as exc:
            _reject(item, exc)
            continue
        if plain and body.content is not None and source != -1:
            plans[body.topic, source] = item.plan
    return [item for item in live if _open(item)]


@dataclass(frozen=True, slots=True)
class _Content:
    """Inline content already compiled and tried in this batch, in a stored template's shape."""

    variants: dict[str, Any]
    version: int = 0  # a stored template's field; an inline item's plan has None


def _rows(session: Session, statement: Any, keys: list[str]) -> list[Any]:
    found: list[Any] = []
    for start in range(0, len(keys), _CHUNK):
        found.extend(session.execute(statement, {"keys": keys[start : start + _CHUNK]}))
    return found


def _resolve_recipients(
    session: Session,
    live: list[_Item],
    *,
    actor: Actor,
    allow_private_webhooks: bool,
    may_change: bool,
) -> list[_Item]:
    """Contact ids for each item's recipients: the named looked up together, the inline ones
    created or changed together (only for items that are otherwise good)."""
    inline: dict[int, dict[str, dict[str, Any]]] = {}
    named: dict[int, list[str]] = {}
    for item in live:
        recipients = item.body.recipients
        if not recipients:
            continue
        own: dict[str, dict[str, Any]] = {}
        if not inline_recipients.is_plain(recipients):
            try:
                inline_recipients.check(recipients, allow_private_webhooks=allow_private_webhooks)
            except HubError as exc:
                _reject(item, exc)
                continue
            inline_recipients.combine(own, recipients)
        inline[item.outcome.index] = own
        named[item.outcome.index] = [r for r in recipients if isinstance(r, str) and r not in own]
    found = notifications.lookup_ids(
        session, (external_id for names in named.values() for external_id in names)
    )
    wanted: dict[str, dict[str, Any]] = {}
    for item in live:
        names = named.get(item.outcome.index)
        if names is None:
            continue
        missing = list(dict.fromkeys(n for n in names if n not in found))
        if missing:
            shown = ", ".join(repr(m) for m in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            _reject(item, InvalidField("recipients", f"no contacts {shown}{more}"))
            continue
        own = inline[item.outcome.index]
        for external_id, given in own.items():  # the later item's fields over the earlier's
            inline_recipients.add(wanted, external_id, given)
    upserted = (
        inline_recipients.upsert(session, wanted, actor, may_change=may_change) if wanted else {}
    )
    for item in live:
        if not _open(item) or item.outcome.index not in named:
            continue
        ids = {found[n] for n in named[item.outcome.index]}
        ids.update(upserted[e] for e in inline[item.outcome.index])
        item.recipients = sorted(ids)
    return [item for item in live if _open(item)]


def _insert(
    session: Session,
    live: list[_Item],
    *,
    owner: str,
    source: str,
    actor: Actor,
    now: dt.datetime,
) -> None:
    """The notifications in one executemany, then the scheduled ones' events and the keys."""
    if not live:
        return
    connection = session.connection()
    dialect = connection.dialect
    convert = bulk_insert.RowConverter(_NOTIFICATION_ROWS, dialect, json_columns=_JSON_COLUMNS)
    rows = []
    for item in live:
        plan = cast(notifications.Plan, item.plan)
        body = item.body
        values = notifications.row(
            topic_id=item.topic_id,
            template_key=body.template,
            template_version=plan.version,
            variants=plan.variants,
            data=body.data,
            source=source,
            now=now,
            render_as=None,
            recipients=item.recipients,
            channels=plan.channels,
            escalation=plan.escalation,
            send_at=plan.send_at,
        )
        rows.append(convert.row(values))
    ids = _NOTIFICATION_ROWS.ids(connection, rows)
    created = _DATETIME.dump_python(now, mode="json")
    events: list[dict[str, Any]] = []
    keys: list[tuple[Any, ...]] = []
    stamp = _KEY_ROWS_INSERT.convert(dialect, "created_at")(now)
    for item, notification_id in zip(live, ids, strict=True):
        plan = cast(notifications.Plan, item.plan)
        state = NotificationState.SCHEDULED if plan.send_at else NotificationState.ACCEPTED
        item.outcome.accepted = Accepted(notification_id, state, now, plan.send_at)
        if plan.send_at is not None and item.recipients:
            events += notifications.scheduled_events(
                item.recipients,
                notification_id=notification_id,
                send_at=plan.send_at,
                topic_key=item.body.topic,
                actor=actor,
                at=now,
            )
        if item.body.idempotency_key is not None:
            # What a single POST stores (NotificationAccepted), so either replays the other.
            answer = {
                "id": notification_id,
                "state": state.value,
                "topic": item.body.topic,
                "created_at": created,
                "send_at": _DATETIME.dump_python(plan.send_at, mode="json")
                if plan.send_at
                else None,
            }
            keys.append(
                (owner, item.body.idempotency_key, item.digest, 202, _answer_text(answer), stamp)
            )
    timeline.record_many(session, events)
    # In key order: two batches sharing keys then take their row locks in the same order,
    # and one waits for the other instead of both deadlocking (PostgreSQL).
    keys.sort(key=lambda row: row[1])
    _KEY_ROWS_INSERT.rows(connection, keys)


_answer_text = bulk_insert.json_text
