"""E-mail bounces and complaints arriving after the send, matched to the delivery they are
about: DSNs (RFC 3464) and ARF reports (RFC 5965), as `hub.channels.email.reports` reads them.

A report is matched by the key Hub gave the delivery (`hub_message_keys`): in the original's
Message-ID, or, when the report quotes nothing of the original, in the VERP address it was sent
back to (`bounces+hub-...@`, see HUB_EMAIL_BOUNCE_ADDRESS). It changes a delivery only when the
address it names (Final- or Original-Recipient, Original-Rcpt-To) is the one this installation
sent that key to; any other report is kept as unmatched, for staff to read, and suppresses
nobody (RELIABILITY 26). A hard bounce (5.x.x) suppresses the address before the next send; a
soft one (4.x.x, "delayed") is counted, and the third within a week suspends the address for a
week; a complaint suppresses it for good.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.channels.email import reports
from hub.channels.email.reports import Kind, Report
from hub.db.base import utcnow
from hub.db.models import ContactEvent, Delivery, UnmatchedReport
from hub.domain import ActorKind, Channel, DeliveryState, EventType, SuppressionReason
from hub.services import message_keys, notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher
from hub.services.message_keys import FoundKey, MessageKeys

SOFT_LIMIT, SOFT_WINDOW = 3, dt.timedelta(days=7)
log = logging.getLogger(__name__)
MAIL_SYSTEM = Actor(kind=ActorKind.INBOUND, name="mail-system", source="email.bounce")


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery_id: int | None  # None: unmatched
    kind: Kind
    suppressed: bool
    unmatched_id: int | None = None
    why: str | None = None  # why it matched nothing


def parse(raw: bytes) -> Report:
    """Raises InvalidField("message", ...) for anything that is not a DSN or ARF report."""
    try:
        return reports.parse(raw)
    except reports.NotAReport as exc:
        raise InvalidField("message", str(exc)) from None


def record(
    session: Session, report: Report, *, hasher: AddressHasher, keys: MessageKeys
) -> Recorded:
    """Act on a report that names one of this installation's deliveries to its address;
    keep any other as unmatched, changing nothing."""
    delivery, address, why = _match(session, report, keys)
    if delivery is None:
        kept = UnmatchedReport(
            received_at=utcnow(),
            kind=report.kind.value,
            why=why[:255],
            message_id=(report.message_id or "")[:998] or None,
            recipients=", ".join(report.recipients)[:2048] or None,
            status=report.status,
            detail=(report.detail or "")[:2000] or None,
        )
        session.add(kept)
        session.flush()
        log.info("unmatched %s report %s kept: %s", report.kind.value, kept.id, why)
        return Recorded(None, report.kind, False, unmatched_id=kept.id, why=why)
    now = utcnow()
    topic_key = notifications.topic_key(session, delivery.notification_id)
    suppress: SuppressionReason | None = None
    expires = None
    if report.kind is Kind.HARD_BOUNCE:
        suppress = SuppressionReason.HARD_BOUNCE
        if not delivery.state.final or delivery.state is DeliveryState.SENT:
            delivery.state = DeliveryState.BOUNCED
            delivery.reason = SuppressionReason.HARD_BOUNCE
            delivery.error_code = report.status
            delivery.updated_at = now
    elif report.kind is Kind.COMPLAINT:
        suppress = SuppressionReason.COMPLAINT
    elif _soft_bounces(session, delivery.contact_id, now) + 1 >= SOFT_LIMIT:
        suppress, expires = SuppressionReason.SOFT_BOUNCE, now + SOFT_WINDOW
    timeline.record(
        session,
        contact_id=delivery.contact_id,
        type=EventType.DELIVERY_BOUNCED,
        actor=MAIL_SYSTEM,
        at=now,
        topic_key=topic_key,
        channel=Channel.EMAIL,
        reason=report.kind,
        changes={
            "delivery_id": delivery.id,
            "notification_id": delivery.notification_id,
            "status": report.status,
            "detail": (report.detail or "")[:500] or None,
        },
    )
    if suppress is not None and address:
        suppressions.add(
            session,
            channel=Channel.EMAIL,
            address=address,
            reason=suppress,
            actor=MAIL_SYSTEM,
            hasher=hasher,
            expires_at=expires,
        )
    return Recorded(delivery.id, report.kind, suppress is not None)


def _match(
    session: Session, report: Report, keys: MessageKeys
) -> tuple[Delivery | None, str | None, str]:
    """The delivery the report is about and the address it names, or why there is none."""
    found = _key(report)
    if found is None:
        return None, None, "it quotes no Message-ID or VERP address of Hub's"
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


def _soft_bounces(session: Session, contact_id: int, now: dt.datetime) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(ContactEvent)
        .where(
            ContactEvent.contact_id == contact_id,
            ContactEvent.type == EventType.DELIVERY_BOUNCED,
            ContactEvent.reason == Kind.SOFT_BOUNCE,
            ContactEvent.occurred_at > now - SOFT_WINDOW,
        )
    )
    return int(count or 0)


def unmatched(session: Session, *, before_id: int | None, limit: int) -> list[UnmatchedReport]:
    """Unmatched reports, newest first."""
    query = select(UnmatchedReport)
    if before_id is not None:
        query = query.where(UnmatchedReport.id < before_id)
    return list(session.scalars(query.order_by(UnmatchedReport.id.desc()).limit(limit)))
