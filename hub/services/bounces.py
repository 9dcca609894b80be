"""E-mail bounces and complaints arriving after the send: DSNs (RFC 3464) and ARF (RFC 5965).

Parsed with the standard library's `email` package and matched to the delivery by the key Hub
gave it (`hub_message_keys`): in the original's Message-ID, or, when the report quotes nothing of
the original, in the VERP address it was sent back to (`bounces+hub-...@`, see
HUB_EMAIL_BOUNCE_ADDRESS). A report changes a delivery only when the address it names (Final- or
Original-Recipient, Original-Rcpt-To) is the one this installation sent that key to; any other
report is kept as unmatched, for staff to read, and suppresses nobody (RELIABILITY 26). A hard
bounce (5.x.x) suppresses the address before the next send; a soft one (4.x.x, "delayed") is
counted, and the third within a week suspends the address for a week; a complaint suppresses
it for good.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import enum
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import ContactEvent, Delivery, UnmatchedReport
from hub.domain import ActorKind, Channel, DeliveryState, EventType, SuppressionReason
from hub.services import message_keys, notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher
from hub.services.message_keys import FoundKey, MessageKeys

# Where a mail system puts the address a bounce was sent to (the envelope sender we used).
RETURN_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
SOFT_LIMIT, SOFT_WINDOW = 3, dt.timedelta(days=7)
MAX_MIME_DEPTH = 16
log = logging.getLogger(__name__)
MAIL_SYSTEM = Actor(kind=ActorKind.INBOUND, name="mail-system", source="email.bounce")


class Kind(enum.StrEnum):
    HARD_BOUNCE = "hard_bounce"
    SOFT_BOUNCE = "soft_bounce"
    COMPLAINT = "complaint"


@dataclass(frozen=True, slots=True)
class Report:
    kind: Kind
    message_id: str | None  # of the original, when the report quotes it
    status: str | None  # the DSN's enhanced status code, e.g. 5.1.1
    detail: str | None  # Diagnostic-Code or Feedback-Type
    key: FoundKey | None = None  # Hub's key, from the Message-ID or else the VERP address
    recipients: tuple[str, ...] = ()  # the addresses the report is about, lower case


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
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError:  # the parser recurses once per level of multipart
        raise InvalidField("message", "MIME parts nested too deeply to read") from None
    _check_depth(message)
    if message.get_content_type() != "multipart/report":
        raise InvalidField("message", "expected multipart/report (a DSN or an ARF report)")
    report_type = message.get_param("report-type", header="content-type")
    parts: list[Message] = list(message.iter_parts()) if isinstance(message, EmailMessage) else []
    original = _original_message_id(parts)
    key = message_keys.find(original) if original else None
    key = key or _verp(message)
    if report_type == "feedback-report":
        feedback = _fields(parts, "message/feedback-report")
        kind = (feedback.get("feedback-type") or "abuse").lower()
        named = _addresses(feedback, "original-rcpt-to", "removal-recipient")
        return Report(Kind.COMPLAINT, original, None, kind, key, named)
    if report_type != "delivery-status":
        raise InvalidField("message", f"report-type {report_type!r} is neither a DSN nor ARF")
    blocks = _recipient_blocks(parts)
    recipient = blocks[-1] if blocks else {}
    status = (recipient.get("status") or "").strip()
    action = (recipient.get("action") or "").strip().lower()
    hard = action == "failed" and status.startswith("5")
    fields = ("final-recipient", "original-recipient")
    named = tuple(dict.fromkeys(a for block in blocks for a in _addresses(block, *fields)))
    return Report(
        Kind.HARD_BOUNCE if hard else Kind.SOFT_BOUNCE,
        original,
        status or None,
        recipient.get("diagnostic-code"),
        key,
        named,
    )


def _check_depth(message: Message) -> None:
    """Real reports nest two or three levels; reading deeper ones only costs (iteratively)."""
    pending = [(message, 1)]
    while pending:
        part, depth = pending.pop()
        if depth > MAX_MIME_DEPTH:
            raise InvalidField("message", f"MIME parts nested deeper than {MAX_MIME_DEPTH}")
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))


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
    found = report.key
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


def _verp(message: Message) -> FoundKey | None:
    for header in RETURN_HEADERS:
        for value in message.get_all(header) or ():
            local = str(value).rpartition("@")[0]
            if "+hub-" in local.lower() and (found := message_keys.find(local)):
                return found
    return None


def _addresses(fields: dict[str, str], *names: str) -> tuple[str, ...]:
    """`rfc822; Alice@Example.com` and `<alice@example.com>` alike, as lower-case addresses."""
    found = []
    for name in names:
        value = fields.get(name) or ""
        address = value.partition(";")[2] if ";" in value else value
        address = address.strip().strip("<>").strip().lower()
        if "@" in address:
            found.append(address)
    return tuple(found)


def _recipient_blocks(parts: Sequence[Message]) -> list[dict[str, str]]:
    """The per-recipient blocks of a delivery-status part (not the per-message one, nor the
    empty block some servers end with)."""
    for part in parts:
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else [part]
        if isinstance(payload, str):
            blocks = [email.message_from_string(payload, policy=email.policy.default)]
        fields = [
            {k.lower(): str(v) for k, v in block.items()}
            for block in blocks
            if isinstance(block, Message)
        ]
        return [f for f in fields if "final-recipient" in f or "action" in f]
    return []


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


def _original_message_id(parts: Sequence[Message]) -> str | None:
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else inner
            if isinstance(inner, Message) and inner["Message-ID"]:
                return str(inner["Message-ID"]).strip()
        if kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            source = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
            headers = email.message_from_string(source, policy=email.policy.default)
            if headers["Message-ID"]:
                return str(headers["Message-ID"]).strip()
    return None


def _fields(parts: Sequence[Message], content_type: str, *, block: int = 0) -> dict[str, str]:
    """The header-style fields of a report part (per-message block, or a recipient block)."""
    for part in parts:
        if part.get_content_type() != content_type:
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else [part]
        if isinstance(payload, str):
            blocks = [email.message_from_string(payload, policy=email.policy.default)]
        chosen = blocks[block] if blocks else None
        if isinstance(chosen, Message):
            return {k.lower(): str(v) for k, v in chosen.items()}
    return {}


def unmatched(session: Session, *, before_id: int | None, limit: int) -> list[UnmatchedReport]:
    """Unmatched reports, newest first."""
    query = select(UnmatchedReport)
    if before_id is not None:
        query = query.where(UnmatchedReport.id < before_id)
    return list(session.scalars(query.order_by(UnmatchedReport.id.desc()).limit(limit)))
