"""E-mail bounces and complaints arriving after the send, matched to the delivery they are
about and acted on once: DSNs (RFC 3464), ARF reports (RFC 5965) and what the format readers
and the ESP webhooks make of the rest, as `hub.channels.email.reports.Report`s.

A report is matched by the key Hub gave the delivery (`hub_message_keys`): in the original's
Message-ID, or, when the report quotes nothing of the original, in the VERP address it was sent
back to (`bounces+hub-...@`, see HUB_EMAIL_BOUNCE_ADDRESS). It changes a delivery only when the
address it names (Final- or Original-Recipient, Original-Rcpt-To) is the one this installation
sent that key to; any other report that carries a key of Hub's (another installation's, another
address, a delivery not here) is kept as unmatched, for staff to read, and suppresses nobody
(RELIABILITY 26). A report with no key of Hub's at all is answered and not kept: anyone can
mail the bounce address, and kept junk would fill the table without limit.

What is done follows the report's verdict on that address, not its headline:
- hard bounce (no such mailbox or domain): the delivery `bounced`, the address suppressed;
- soft bounce: counted, at most once per address and day, and the third counted within a week
  suspends the address for a week; one that is final (`Action: failed`, or any 5.x.x status
  whatever Action says: mailbox full, too large, a relay gave up after retrying) also makes
  the delivery `failed`;
- blocked (5.7.x spam, policy, reputation): the delivery `failed`, shown on the timeline; the
  person is not suppressed, since the refusal is about the message or the sender;
- complaint: the address suppressed for good;
- not a bounce (a delay or delivery notice, an auto-reply): nothing at all, not even kept.
A second copy of a report changes nothing (`duplicate`): for hard bounces and complaints any
second report of that kind on the delivery, for soft bounces and blocks one with the same
status (see `bounce_receipts`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from hub.channels.email import reports
from hub.channels.email.reports import Kind, Report, Verdict
from hub.db.base import utcnow
from hub.db.models import BounceReceipt, Delivery, UnmatchedReport
from hub.domain import (
    ActorKind,
    Channel,
    DeliveryState,
    EventType,
    FailureReason,
    SoftBounceCause,
    SuppressionReason,
    delivery_reason,
)
from hub.services import bounce_receipts as receipts
from hub.services import message_keys, notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.bounce_receipts import SOFT_LIMIT, SOFT_WINDOW
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher
from hub.services.message_keys import FoundKey, MessageKeys

log = logging.getLogger(__name__)
# What a retry may cure: a lost or refused connection, a lock, SQLite's write queue or the
# pool timing out. The routes answer 503 with Retry-After for these, never 500.
TRANSIENT = (OperationalError, InterfaceError, TimeoutError, PoolTimeout)
MAIL_SYSTEM = Actor(kind=ActorKind.INBOUND, name="mail-system", source="email.bounce")
DETAIL_LENGTH = 2000
NO_KEY = "it quotes no Message-ID or VERP address of Hub's, so it is not kept"
# What a DSN's Action says when it is not a failure, for `Recorded.why`.
NOT_BOUNCES = {
    "delayed": "a delay notice, not a bounce: the mail system is still trying",
    "delivered": "a delivery notice, not a bounce",
    "relayed": "a relay notice (passed on to a system that sends no reports), not a bounce",
    "expanded": "an expansion notice (delivered to a list's members), not a bounce",
}


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery_id: int | None  # None: unmatched, or not a bounce
    kind: Kind
    suppressed: bool  # whether the address is suppressed because of this report
    unmatched_id: int | None = None
    why: str | None = None  # why it matched nothing, or changed nothing
    duplicate: bool = False  # a copy of a report recorded before: nothing changed


@dataclass(frozen=True, slots=True)
class _Acted:
    suppress: SuppressionReason | None = None
    expires: dt.datetime | None = None
    changes: dict[str, object] | None = None  # what the timeline keeps beside the status


def parse(raw: bytes) -> Report:
    """Raises InvalidField("message", ...) for anything that is not a DSN or ARF report."""
    try:
        return reports.parse(raw)
    except reports.NotAReport as exc:
        raise InvalidField("message", str(exc)) from None


def record(
    session: Session,
    report: Report,
    *,
    hasher: AddressHasher,
    keys: MessageKeys,
    now: dt.datetime | None = None,
) -> Recorded:
    """Act on a report that names one of this installation's deliveries to its address;
    keep any other as unmatched, changing nothing. The caller commits. `now`: when it
    arrived (tests move it across days)."""
    now = now or utcnow()
    if report.kind is Kind.NOT_BOUNCE:  # every verdict in it: nothing to match or keep
        return _not_a_bounce(report.headline)
    found = _key(report)
    if found is None:
        log.info("a %s report with no key of Hub's: answered, not kept", report.kind.value)
        return Recorded(None, report.kind, False, why=NO_KEY)
    delivery, address, why = _match(session, report, found, keys)
    if delivery is None or address is None:
        return _keep_unmatched(session, report, why, now)
    verdict = report.about(address.strip().lower())
    if verdict.kind is Kind.NOT_BOUNCE:
        return _not_a_bounce(verdict)
    digest = hasher(Channel.EMAIL, address)
    receipt = receipts.first_copy(
        session, delivery_id=delivery.id, verdict=verdict, address_hash=digest, now=now
    )
    if receipt is None:
        log.info("a copy of a %s report for delivery %s: ignored", verdict.kind, delivery.id)
        why = "a copy of a report recorded before: nothing changed"
        return Recorded(delivery.id, verdict.kind, False, why=why, duplicate=True)
    acted = _act(session, delivery, verdict, receipt, now=now)
    timeline.record(
        session,
        contact_id=delivery.contact_id,
        type=EventType.DELIVERY_BOUNCED,
        actor=MAIL_SYSTEM,
        at=now,
        topic_key=notifications.topic_key(session, delivery.notification_id),
        channel=Channel.EMAIL,
        reason=verdict.kind,
        changes={
            "delivery_id": delivery.id,
            "notification_id": delivery.notification_id,
            "status": verdict.status,
            "detail": (verdict.detail or "")[:500] or None,
            "action": verdict.action,
            **(acted.changes or {}),
        },
    )
    if acted.suppress is not None:
        suppressions.add(
            session,
            channel=Channel.EMAIL,
            address=address,
            reason=acted.suppress,
            actor=MAIL_SYSTEM,
            hasher=hasher,
            expires_at=acted.expires,
        )
    return Recorded(delivery.id, verdict.kind, acted.suppress is not None)


def _act(
    session: Session,
    delivery: Delivery,
    verdict: Verdict,
    receipt: BounceReceipt,
    *,
    now: dt.datetime,
) -> _Acted:
    """The delivery's new state for the verdict, and whom to suppress."""
    if verdict.kind is Kind.HARD_BOUNCE:
        reason = delivery_reason(SuppressionReason.HARD_BOUNCE)
        _settle(delivery, DeliveryState.BOUNCED, reason, verdict, now=now)
        return _Acted(suppress=SuppressionReason.HARD_BOUNCE)
    if verdict.kind is Kind.COMPLAINT:
        return _Acted(suppress=SuppressionReason.COMPLAINT)
    if verdict.kind is Kind.BLOCKED:
        failed = _settle(
            delivery, DeliveryState.FAILED, delivery_reason(FailureReason.BLOCKED), verdict, now=now
        )
        return _Acted(changes={"failed": failed})
    cause = soft_cause(verdict)
    failed = False
    if _final(verdict):
        reason = delivery_reason(SuppressionReason.SOFT_BOUNCE, cause)
        failed = _settle(delivery, DeliveryState.FAILED, reason, verdict, now=now)
    counted = receipts.count_soft(session, receipt, now=now)
    changes: dict[str, object] = {"failed": failed, "cause": cause, "counted": counted}
    if counted and receipts.soft_days(session, receipt.address_hash, now=now) >= SOFT_LIMIT:
        return _Acted(SuppressionReason.SOFT_BOUNCE, now + SOFT_WINDOW, changes)
    return _Acted(changes=changes)


def _settle(
    delivery: Delivery, state: DeliveryState, reason: str, verdict: Verdict, *, now: dt.datetime
) -> bool:
    """Give the delivery the report's outcome, unless it already has another: one sent, whose
    outcome was unknown (the report proves it went), or still on its way. Whether it did."""
    current = delivery.state
    if current.final and current not in (DeliveryState.SENT, DeliveryState.UNKNOWN):
        return False
    delivery.state = state
    delivery.reason = reason
    delivery.error_code = (verdict.status or "")[: receipts.STATUS_LENGTH] or None
    delivery.error = (verdict.detail or "")[:DETAIL_LENGTH] or None
    delivery.updated_at = now
    return True


def _final(verdict: Verdict) -> bool:
    """Whether a soft bounce ends this message's journey: the mail system says it gave up
    (`Action: failed`), or its status is permanent (5.x.x) whatever Action says, since some
    reports have none: a 5.2.2 with no Action left its delivery `sent` for ever."""
    return verdict.action == "failed" or (verdict.status or "").startswith("5")


def soft_cause(verdict: Verdict) -> SoftBounceCause | None:
    """Why a soft bounce is final, from its status (RFC 3463) and, for readers that found no
    status, its words; None when neither says."""
    status = verdict.status or ""
    words = (verdict.detail or "").lower()
    subject = status[2:] if len(status) > 2 else ""
    if subject == "2.2" or any(w in words for w in ("mailbox full", "quota", "mailbox is full")):
        return SoftBounceCause.MAILBOX_FULL
    if subject in ("2.3", "3.4") or "too large" in words or "too big" in words:
        return SoftBounceCause.TOO_LARGE
    if status.startswith("4") and verdict.action == "failed":
        return SoftBounceCause.EXPIRED
    return None


def _not_a_bounce(verdict: Verdict) -> Recorded:
    why = NOT_BOUNCES.get(verdict.action or "")
    if why is None:
        said = f": {verdict.detail[:200]}" if verdict.detail else ""
        why = f"not a bounce (an auto-reply or a notice){said}"
    return Recorded(None, Kind.NOT_BOUNCE, False, why=why)


def park(session: Session, report: Report, *, why: str, now: dt.datetime | None = None) -> int:
    """Keep a report Hub could not act on (its recording failed) among the unmatched ones, so
    staff see it: a provider that was answered 200 never sends it again. Its id. The caller
    commits."""
    return _keep(session, report, why, now or utcnow())


def _keep_unmatched(session: Session, report: Report, why: str, now: dt.datetime) -> Recorded:
    kept = _keep(session, report, why, now)
    log.info("unmatched %s report %s kept: %s", report.kind.value, kept, why)
    return Recorded(None, report.kind, False, unmatched_id=kept, why=why)


def _keep(session: Session, report: Report, why: str, now: dt.datetime) -> int:
    # Every text cut to its column: an ESP's status is whatever the provider sent.
    kept = UnmatchedReport(
        received_at=now,
        kind=report.kind.value,
        why=why[:255],
        message_id=(report.message_id or "")[:998] or None,
        recipients=", ".join(report.recipients)[:2048] or None,
        status=(report.status or "")[: receipts.STATUS_LENGTH] or None,
        detail=(report.detail or "")[:DETAIL_LENGTH] or None,
    )
    session.add(kept)
    session.flush()
    return kept.id


def _match(
    session: Session, report: Report, found: FoundKey, keys: MessageKeys
) -> tuple[Delivery | None, str | None, str]:
    """The delivery the report's key names and the address it names, or why there is none."""
    named = f"hub-{found.notification_id}-{found.delivery_id}"
    delivery = session.get(Delivery, found.delivery_id, with_for_update=True)
    if (
        delivery is None
        or delivery.channel is not Channel.EMAIL
        or delivery.notification_id != found.notification_id
    ):
        return None, None, f"no e-mail delivery here is {named}"
    if _sent_to(delivery, found, report.recipients, keys):
        return delivery, delivery.address, ""
    if found.tag is None:  # Hub before version tags: kept for staff, who can act on it
        return None, None, f"{named} is a key from before keys were tagged"
    if report.recipients and (delivery.address or "").lower() not in report.recipients:
        return None, None, f"{named} was not sent to {', '.join(report.recipients)}"
    return None, None, f"{named} was not made by this installation"


def _sent_to(
    delivery: Delivery, found: FoundKey, named: tuple[str, ...], keys: MessageKeys
) -> bool:
    """Whether the report is about the delivery's own address: named by the report (or, when
    it names nobody, implied by the VERP address), and the address this installation made the
    key for. A copy of the database elsewhere makes the same keys, so the address is what tells
    its reports from ours."""
    own = (delivery.address or "").strip().lower()
    if not own or found.tag is None or (named and own not in named):
        return False
    return keys.sent_to(found, own)


def _key(report: Report) -> FoundKey | None:
    """Hub's key in the Message-ID the report quotes, else in the VERP address it was sent to."""
    if report.message_id and (found := message_keys.find(report.message_id)):
        return found
    for value in report.returned_to:
        local = value.rpartition("@")[0]
        if "+hub-" in local.lower() and (found := message_keys.find(local)):
            return found
    return None


def unmatched(session: Session, *, before_id: int | None, limit: int) -> list[UnmatchedReport]:
    """Unmatched reports, newest first."""
    query = select(UnmatchedReport)
    if before_id is not None:
        query = query.where(UnmatchedReport.id < before_id)
    return list(session.scalars(query.order_by(UnmatchedReport.id.desc()).limit(limit)))
