"""A provider's batch of reports, recorded one by one: each in its own SAVEPOINT, so an event
that cannot be recorded loses none of the others, and each acted on once however often the
provider retries the batch.

An event that fails for a reason of its own is parked among the unmatched reports (why: "could
not be recorded: <error>"), in a fresh savepoint: the batch is answered 200 and the provider
never sends it again, so staff must see it (GET /v1/bounces/unmatched), not only the log.
A database that is down for now is not one event's fault: it is raised (the route answers 503
and the provider retries the whole batch, whose recorded events are then duplicates).
"""

from __future__ import annotations

import enum
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from hub.channels.email.reports import Kind, Report
from hub.services import bounces, inbound
from hub.services.bounces import TRANSIENT
from hub.services.hashing import AddressHasher
from hub.services.message_keys import MessageKeys

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    MATCHED = "matched"  # a delivery of Hub's to that address: recorded on it
    UNMATCHED = "unmatched"  # kept for staff (GET /v1/bounces/unmatched), changing nothing
    IGNORED = "ignored"  # not mail coming back (delivered, opened, deferred, dropped...)
    DUPLICATE = "duplicate"  # this very event was received before
    INVALID = "invalid"  # not an event Hub can read
    FAILED = "failed"  # could not be recorded (logged, kept among the unmatched); the others were


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
    except Exception as exc:  # one bad event must not lose the batch: logged and parked
        log.exception("a %s %s event could not be recorded", report.source, kind.value)
        return _parked(session, item, report, why=f"could not be recorded: {type(exc).__name__}")
    return _result(recorded)


def _parked(session: Session, item: Item, report: Report, *, why: str) -> Result:
    """The failed event kept for staff, in a savepoint of its own (the failed one was rolled
    back), with its receipt, so a retried batch does not keep it twice; if even that fails,
    the log is all there is."""
    try:
        with session.begin_nested():
            inbound.first_time(session, item.receipt)
            kept = bounces.park(session, report, why=why)
    except TRANSIENT:
        raise
    except Exception:
        log.exception("a %s event that failed could not be kept either", report.source)
        return Result(Outcome.FAILED, report.kind, why=f"{why}; not kept either (logged)")
    return Result(Outcome.FAILED, report.kind, why=f"{why}; kept as unmatched report {kept}")


def _result(recorded: bounces.Recorded) -> Result:
    if recorded.duplicate:
        return Result(Outcome.DUPLICATE, recorded.kind, recorded.delivery_id, recorded.why)
    if recorded.kind is Kind.NOT_BOUNCE:  # news about that address, though not the headline
        return Result(Outcome.IGNORED, recorded.kind, why=recorded.why)
    if recorded.delivery_id is None:
        return Result(Outcome.UNMATCHED, recorded.kind, why=recorded.why)
    return Result(Outcome.MATCHED, recorded.kind, recorded.delivery_id)
