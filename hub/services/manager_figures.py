"""What the console's manager view counts: an employee's clients (theirs, or their teams'),
each with their latest activity and their refusals and failures in a period; and, for every
employee who owns a client, how many clients they handle and their clients' refusals,
failures and replies in the period ("how many clients a manager is handling").

Each figure is one grouped statement over the timeline (`contact_events`), never events
loaded one by one: a hub may have 100,000 clients. What counts:

- a **refusal**: the client left a topic (`subscription.changed` to `unsubscribed`), left
  everything (`preferences.changed`, `unsubscribed_all` on), or stopped a channel themselves
  (`suppression.added` for an SMS STOP, a voice opt-out, a complaint, a carrier's opt-out).
  The STOP's own `inbound.message` and the `refusal.reason` a person may add afterwards are
  the same refusal told again, so they do not count twice;
- a **failure**: a delivery bounced or failed for good (`delivery.bounced`, `delivery.failed`);
- a **reply**: a text the client sent that was no keyword (`inbound.message`, reason null).

Who handles whom is read as it is now: a client who changed owner counts, with all their
events in the period, for the owner they have today.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session

from hub.db.models import Contact, ContactEvent, Team, TeamMember
from hub.domain import PERSONS_REFUSALS, ContactKind, EventType, SubscriptionStatus
from hub.exports import CsvWriter
from hub.services import timeline_entries, timeline_words


class Whose(enum.StrEnum):
    """Which clients "my clients" lists: those the employee owns, or those in their teams."""

    MINE = "mine"
    TEAMS = "teams"


def refusal() -> ColumnElement[bool]:
    """Whether a timeline event is a refusal (see the module's docstring)."""
    events = ContactEvent
    return or_(
        and_(
            events.type == EventType.SUBSCRIPTION_CHANGED,
            events.changes[("status", "after")].as_string()
            == SubscriptionStatus.UNSUBSCRIBED.value,
        ),
        and_(
            events.type == EventType.PREFERENCES_CHANGED,
            events.changes[("unsubscribed_all", "after")].as_boolean().is_(True),
        ),
        and_(
            events.type == EventType.SUPPRESSION_ADDED,
            events.reason.in_(sorted(r.value for r in PERSONS_REFUSALS)),
        ),
    )


def failure() -> ColumnElement[bool]:
    return ContactEvent.type.in_((EventType.DELIVERY_BOUNCED, EventType.DELIVERY_FAILED))


def reply() -> ColumnElement[bool]:
    return and_(ContactEvent.type == EventType.INBOUND_MESSAGE, ContactEvent.reason.is_(None))


# The kinds any count is made of: the statements keep only these rows before the JSON
# conditions are evaluated (most of a timeline is deliveries sent and delivered).
COUNTED = (
    EventType.SUBSCRIPTION_CHANGED,
    EventType.PREFERENCES_CHANGED,
    EventType.SUPPRESSION_ADDED,
    EventType.DELIVERY_BOUNCED,
    EventType.DELIVERY_FAILED,
    EventType.INBOUND_MESSAGE,
)


@dataclass(frozen=True, slots=True)
class Period:
    """From `since` (included) to `until` (excluded), UTC."""

    since: dt.datetime
    until: dt.datetime

    @classmethod
    def last(cls, days: int, *, now: dt.datetime) -> Period:
        return cls(now - dt.timedelta(days=days), now)

    def holds(self) -> ColumnElement[bool]:
        return and_(ContactEvent.occurred_at >= self.since, ContactEvent.occurred_at < self.until)


@dataclass(frozen=True, slots=True)
class Counts:
    refusals: int = 0
    failures: int = 0
    replies: int = 0


def _tally(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def counts_for(session: Session, contact_ids: Sequence[int], period: Period) -> dict[int, Counts]:
    """Each contact's refusals, failures and replies in the period (one grouped statement);
    a contact with none is absent."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(
            ContactEvent.contact_id,
            _tally(refusal()),
            _tally(failure()),
            _tally(reply()),
        )
        .where(
            ContactEvent.contact_id.in_(list(contact_ids)),
            ContactEvent.type.in_(COUNTED),
            period.holds(),
        )
        .group_by(ContactEvent.contact_id)
    )
    return {row[0]: Counts(int(row[1]), int(row[2]), int(row[3])) for row in rows}


# -- "my clients" -------------------------------------------------------------------------


def clients_query(employee_id: int, whose: Whose) -> Select[Contact]:
    """The employee's clients: those they own, or the clients of every team they are in."""
    query = select(Contact)
    if whose is Whose.MINE:
        return query.where(Contact.owner_id == employee_id)  # contacts.owner_id is indexed
    my_teams = select(TeamMember.team_id).where(TeamMember.contact_id == employee_id)
    in_them = select(TeamMember.contact_id).where(TeamMember.team_id.in_(my_teams))
    return query.where(Contact.id.in_(in_them), Contact.kind == ContactKind.CLIENT)


def clients_page(
    session: Session, employee_id: int, whose: Whose, *, before_id: int | None, limit: int
) -> list[Contact]:
    """Up to `limit` of the employee's clients older than `before_id`, newest first."""
    query = clients_query(employee_id, whose)
    if before_id is not None:
        query = query.where(Contact.id < before_id)
    return list(session.scalars(query.order_by(Contact.id.desc()).limit(limit)))


def team_names(session: Session, contact_ids: Sequence[int]) -> dict[int, list[str]]:
    """Each contact's teams by name, sorted; a contact in no team is absent."""
    found: dict[int, list[str]] = {}
    if not contact_ids:
        return found
    rows = session.execute(
        select(TeamMember.contact_id, Team.name)
        .join(Team, Team.id == TeamMember.team_id)
        .where(TeamMember.contact_id.in_(list(contact_ids)))
        .order_by(TeamMember.contact_id, Team.name)
    )
    for contact_id, name in rows:
        found.setdefault(contact_id, []).append(name)
    return found


@dataclass(frozen=True, slots=True)
class Latest:
    """A contact's newest timeline event, in the words of the contact's own page."""

    occurred_at: dt.datetime
    kind: str
    words: str


def latest(
    session: Session,
    contacts: Sequence[Contact],
    *,
    topics: Mapping[str, str],
    now: dt.datetime,
) -> dict[int, Latest]:
    """Each contact's newest event (one statement for the events, one for what they name);
    a contact with no event is absent."""
    zones = {c.id: c.timezone for c in contacts}
    if not zones:
        return {}
    events = ContactEvent.__table__.c
    # Newest by when it happened (a provider's report may arrive after later events), the
    # later row first among events of the same moment.
    rank = (
        func.row_number()
        .over(
            partition_by=events.contact_id, order_by=(events.occurred_at.desc(), events.id.desc())
        )
        .label("rank")
    )
    ranked = select(events.id, rank).where(events.contact_id.in_(list(zones))).subquery("ranked")
    newest = select(ranked.c.id).where(ranked.c.rank == 1)
    rows = session.execute(
        select(events.contact_id, events.occurred_at, *timeline_entries.WORDED).where(
            events.id.in_(newest)
        )
    ).all()
    said = {row.contact_id: timeline_entries.event_of(row) for row in rows}
    known = timeline_entries.facts(session, list(said.values()), topics=topics, zone=None, now=now)
    found: dict[int, Latest] = {}
    for row in rows:
        event = said[row.contact_id]
        theirs = dataclasses.replace(known, zone=zones.get(row.contact_id))
        words = timeline_words.sentence(event, theirs) or timeline_words.fallback(event)
        found[row.contact_id] = Latest(row.occurred_at, row.kind, timeline_words.plain(words))
    return found


# -- per manager ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManagerRow:
    """One employee who owns at least one client, and what their clients did in the period."""

    external_id: str
    name: str | None
    clients: int
    refusals: int
    failures: int
    replies: int


@dataclass(frozen=True, slots=True)
class Totals:
    managers: int = 0
    clients: int = 0
    refusals: int = 0
    failures: int = 0
    replies: int = 0


def by_manager(session: Session, period: Period) -> list[ManagerRow]:
    """Every employee who owns a client, by name (then external id): two grouped statements,
    the clients per owner and their events per owner."""
    owners = (
        select(Contact.owner_id.label("owner_id"), func.count().label("clients"))
        .where(Contact.owner_id.is_not(None))
        .group_by(Contact.owner_id)
        .subquery()
    )
    employee = select(Contact.id, Contact.external_id, Contact.name, owners.c.clients).join(
        owners, owners.c.owner_id == Contact.id
    )
    client = Contact.__table__.alias("client")
    happened = session.execute(
        select(
            client.c.owner_id,
            _tally(refusal()),
            _tally(failure()),
            _tally(reply()),
        )
        .select_from(ContactEvent)
        .join(client, client.c.id == ContactEvent.contact_id)
        .where(client.c.owner_id.is_not(None), ContactEvent.type.in_(COUNTED), period.holds())
        .group_by(client.c.owner_id)
    )
    counts = {row[0]: Counts(int(row[1]), int(row[2]), int(row[3])) for row in happened}
    rows = [
        ManagerRow(
            external_id=external_id,
            name=name,
            clients=int(clients),
            refusals=counts.get(owner_id, Counts()).refusals,
            failures=counts.get(owner_id, Counts()).failures,
            replies=counts.get(owner_id, Counts()).replies,
        )
        for owner_id, external_id, name, clients in session.execute(employee)
    ]
    return sorted(rows, key=lambda r: ((r.name or r.external_id).casefold(), r.external_id))


def totals(rows: Sequence[ManagerRow]) -> Totals:
    return Totals(
        managers=len(rows),
        clients=sum(r.clients for r in rows),
        refusals=sum(r.refusals for r in rows),
        failures=sum(r.failures for r in rows),
        replies=sum(r.replies for r in rows),
    )


CSV_COLUMNS = ("external_id", "name", "clients", "refusals", "failures", "replies")


def csv_chunks(rows: Sequence[ManagerRow], period: Period) -> Iterator[str]:
    """The report as CSV: a header, a row per employee, then the totals (no external id, the
    name "Total"). Every cell goes through `CsvWriter`, so a name cannot run as a formula."""
    buffer = io.StringIO()
    writer = CsvWriter(buffer)
    writer.writerow((*CSV_COLUMNS, "since", "until"))
    span = (period.since.isoformat(), period.until.isoformat())
    for row in rows:
        writer.writerow(
            (
                row.external_id,
                row.name or "",
                row.clients,
                row.refusals,
                row.failures,
                row.replies,
                *span,
            )
        )
    sums = totals(rows)
    writer.writerow(("", "Total", sums.clients, sums.refusals, sums.failures, sums.replies, *span))
    yield buffer.getvalue()
