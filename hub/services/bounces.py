"""E-mail bounces and complaints arriving after the send: DSNs (RFC 3464) and ARF (RFC 5965).

Parsed with the standard library's `email` package and matched to the delivery by the
Message-ID Hub gave it (`<hub-{notification}-{delivery}@...>`), or, when the report quotes
nothing of the original, by the VERP address it was sent back to
(`bounces+hub-{notification}-{delivery}@...`, see HUB_EMAIL_BOUNCE_ADDRESS). A hard bounce (5.x.x)
suppresses the address before the next send; a soft one (4.x.x, "delayed") is counted, and
the third within a week suspends the address for a week; a complaint suppresses it for good.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import ContactEvent, Delivery
from hub.domain import ActorKind, Channel, DeliveryState, EventType, SuppressionReason
from hub.services import notifications, suppressions, timeline
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.hashing import AddressHasher

OUR_MESSAGE_ID = re.compile(r"<hub-(\d{1,19})-(\d{1,19})@[^>]+>")
OUR_VERP = re.compile(r"\+hub-(\d{1,19})-(\d{1,19})@", re.IGNORECASE)
# Where a mail system puts the address a bounce was sent to (the envelope sender we used).
RETURN_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
SOFT_LIMIT, SOFT_WINDOW = 3, dt.timedelta(days=7)
MAX_MIME_DEPTH = 16
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
    verp: tuple[str, str] | None = None  # (notification, delivery) from the VERP address


@dataclass(frozen=True, slots=True)
class Recorded:
    delivery_id: int
    kind: Kind
    suppressed: bool


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
    verp = _verp(message)
    if original is None and verp is None:
        raise InvalidField(
            "message", "the report carries no original Message-ID and no VERP address of Hub's"
        )
    if report_type == "feedback-report":
        feedback = _fields(parts, "message/feedback-report")
        kind = (feedback.get("feedback-type") or "abuse").lower()
        return Report(Kind.COMPLAINT, original, None, kind, verp)
    if report_type != "delivery-status":
        raise InvalidField("message", f"report-type {report_type!r} is neither a DSN nor ARF")
    recipient = _fields(parts, "message/delivery-status", block=-1)
    status = (recipient.get("status") or "").strip()
    action = (recipient.get("action") or "").strip().lower()
    hard = action == "failed" and status.startswith("5")
    return Report(
        Kind.HARD_BOUNCE if hard else Kind.SOFT_BOUNCE,
        original,
        status or None,
        recipient.get("diagnostic-code"),
        verp,
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


def record(session: Session, report: Report, *, hasher: AddressHasher) -> Recorded:
    match = OUR_MESSAGE_ID.fullmatch((report.message_id or "").strip())
    key = match.group(1, 2) if match else report.verp
    delivery = session.get(Delivery, int(key[1]), with_for_update=True) if key else None
    if delivery is None or delivery.channel is not Channel.EMAIL:
        raise InvalidField("message", f"no e-mail delivery of Hub's has {_named(report)}")
    if delivery.notification_id != int(key[0]):  # type: ignore[index]
        raise InvalidField("message", f"{_named(report)} names another notification's delivery")
    now = utcnow()
    topic_key = notifications.topic_key(session, delivery.notification_id)
    suppress: SuppressionReason | None = None
    expires = None
    if report.kind is Kind.HARD_BOUNCE:
        suppress = SuppressionReason.HARD_BOUNCE
        if not delivery.state.final or delivery.state is DeliveryState.SENT:
            delivery.state = DeliveryState.BOUNCED
            delivery.reason = Kind.HARD_BOUNCE
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
    if suppress is not None and delivery.address:
        suppressions.add(
            session,
            channel=Channel.EMAIL,
            address=delivery.address,
            reason=suppress,
            actor=MAIL_SYSTEM,
            hasher=hasher,
            expires_at=expires,
        )
    return Recorded(delivery.id, report.kind, suppress is not None)


def _verp(message: Message) -> tuple[str, str] | None:
    for header in RETURN_HEADERS:
        for value in message.get_all(header) or ():
            if found := OUR_VERP.search(str(value)):
                return found.group(1), found.group(2)
    return None


def _named(report: Report) -> str:
    if report.message_id:
        return f"Message-ID {report.message_id}"
    assert report.verp is not None
    return f"VERP address +hub-{report.verp[0]}-{report.verp[1]}"


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
