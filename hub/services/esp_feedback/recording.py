"""A provider's batch of reports, recorded one by one: each in its own SAVEPOINT, so an event
that cannot be recorded loses none of the others, and each acted on once however often the
provider retries the batch.

A database that is down for now is not one event's fault: it is raised (the route answers 503
and the provider retries the whole batch, whose recorded events are then duplicates).
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from hub.channels.email.reports import Kind, Report
from hub.services import bounces, inbound
from hub.services.hashing import AddressHasher
from hub.services.message_keys import MessageKeys

log = logging.getLogger(__name__)

# What a retry may cure: a lost connection, a lock or the SQLite write queue timing out.
TRANSIENT = (OperationalError, InterfaceError, TimeoutError)


class Outcome(enum.StrEnum):
    MATCHED = "matched"  # a delivery of Hub's to that address: recorded on it
    UNMATCHED = "unmatched"  # kept for staff (GET /v1/bounces/unmatched), changing nothing
    IGNORED = "ignored"  # not mail coming back (delivered, opened, deferred, dropped...)
    DUPLICATE = "duplicate"  # this very event was received before
    INVALID = "invalid"  # not an event Hub can read
    FAILED = "failed"  # could not be recorded (logged); the others were


@dataclass(frozen=True, slots=True)
class Item:
    """One event of a batch: its report, or why it could not be read."""

    report: Report | None
    receipt: str | None = None  # the provider's id of the event, when it has one
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    kind: Kind | None = None
    delivery_id: int | None = None
    why: str | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    results: list[Result] = field(default_factory=list)

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def kinds(self) -> dict[str, int]:
        """How many events of each kind arrived (read ones only)."""
        return dict(Counter(r.kind.value for r in self.results if r.kind is not None))


def record_all(
    session: Session, items: Iterable[Item], *, hasher: AddressHasher, keys: MessageKeys
) -> Summary:
    """Record each item in its own savepoint; the caller commits. Raises what TRANSIENT
    names (nothing of the batch should then be committed)."""
    return Summary([_record(session, item, hasher=hasher, keys=keys) for item in items])


def _record(session: Session, item: Item, *, hasher: AddressHasher, keys: MessageKeys) -> Result:
    report = item.report
    if report is None:
        return Result(Outcome.INVALID, why=item.problem)
    kind = report.kind
    if kind is Kind.NOT_BOUNCE:  # opens and deliveries are most events: no receipt for them
        return Result(Outcome.IGNORED, kind)
    try:
        with session.begin_nested():
            if not inbound.first_time(session, item.receipt):
                return Result(Outcome.DUPLICATE, kind, why="this event was received before")
            recorded = bounces.record(session, report, hasher=hasher, keys=keys)
    except TRANSIENT:
        raise
    except Exception:  # one bad event must not lose the batch: it is logged and counted
        log.exception("a %s %s event could not be recorded", report.source, kind.value)
        return Result(Outcome.FAILED, kind, why="could not be recorded; the error is logged")
    return _result(recorded)


def _result(recorded: bounces.Recorded) -> Result:
    if recorded.duplicate:
        return Result(Outcome.DUPLICATE, recorded.kind, recorded.delivery_id, recorded.why)
    if recorded.kind is Kind.NOT_BOUNCE:  # news about that address, though not the headline
        return Result(Outcome.IGNORED, recorded.kind, why=recorded.why)
    if recorded.delivery_id is None:
        return Result(Outcome.UNMATCHED, recorded.kind, why=recorded.why)
    return Result(Outcome.MATCHED, recorded.kind, recorded.delivery_id)
