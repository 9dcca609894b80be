"""Mail that comes back, read: delivery-status notifications (RFC 3464) and abuse reports in
the Abuse Reporting Format (RFC 5965), parsed with the standard library's `email` package.

`parse` says what a report is and what it quotes; deciding which delivery it is about, if any,
is the business of `hub.services.bounces`.
"""

from __future__ import annotations

import email
import email.policy
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message

# Where a mail system puts the address a bounce was sent to (the envelope sender we used).
RETURN_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
MAX_MIME_DEPTH = 16


class Kind(enum.StrEnum):
    """What a report says happened to one recipient, and so what Hub does about it."""

    HARD_BOUNCE = "hard_bounce"  # no such mailbox or domain: suppress the address
    SOFT_BOUNCE = "soft_bounce"  # full, too large, or given up after retrying: failed, counted
    BLOCKED = "blocked"  # 5.7.x spam, policy or reputation: recorded and shown, nobody suppressed
    COMPLAINT = "complaint"  # the person called it spam: suppress for good
    NOT_BOUNCE = "not_bounce"  # delayed, delivered, relayed, expanded, an auto-reply: nothing


class NotAReport(ValueError):
    """The bytes are not a DSN or an ARF report (or are nested too deeply to read)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report says of one recipient (one per-recipient block of a DSN)."""

    address: str | None  # lower case; None when the report names nobody (found by VERP)
    kind: Kind
    status: str | None = None  # the enhanced status code, e.g. 5.1.1
    detail: str | None = None  # Diagnostic-Code, Feedback-Type or the detector's words
    action: str | None = None  # the DSN's Action, lower case


@dataclass(frozen=True, slots=True)
class Report:
    message_id: str | None  # of the original, as the report quotes it
    # Where the report was sent (the envelope sender of the original, a VERP address for
    # Hub's mail): each value of the RETURN_HEADERS, in that order, as written.
    returned_to: tuple[str, ...]
    verdicts: tuple[Verdict, ...]  # at least one
    source: str = "dsn"  # how it was read: dsn, arf, detector, ses, sendgrid

    def about(self, address: str | None) -> Verdict:
        """The verdict on `address` (lower case), else the report's headline verdict."""
        for verdict in self.verdicts:
            if address is not None and verdict.address == address:
                return verdict
        return self.headline

    @property
    def headline(self) -> Verdict:
        """The most consequential verdict: what the report is, said in one word."""
        return min(self.verdicts, key=lambda verdict: _WEIGHT[verdict.kind])

    @property
    def kind(self) -> Kind:
        return self.headline.kind

    @property
    def status(self) -> str | None:
        return self.headline.status

    @property
    def detail(self) -> str | None:
        return self.headline.detail

    @property
    def recipients(self) -> tuple[str, ...]:
        """The addresses the report is about, lower case."""
        return tuple(dict.fromkeys(v.address for v in self.verdicts if v.address))


_WEIGHT = {
    Kind.COMPLAINT: 0,
    Kind.HARD_BOUNCE: 1,
    Kind.SOFT_BOUNCE: 2,
    Kind.BLOCKED: 3,
    Kind.NOT_BOUNCE: 4,
}


def parse(raw: bytes) -> Report:
    """Raises NotAReport for anything that is not a DSN or ARF report."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
    except RecursionError:  # the parser recurses once per level of multipart
        raise NotAReport("MIME parts nested too deeply to read") from None
    _check_depth(message)
    if message.get_content_type() != "multipart/report":
        raise NotAReport("expected multipart/report (a DSN or an ARF report)")
    report_type = message.get_param("report-type", header="content-type")
    parts: list[Message] = list(message.iter_parts()) if isinstance(message, EmailMessage) else []
    original = _original_message_id(parts)
    returned_to = tuple(
        str(value) for header in RETURN_HEADERS for value in message.get_all(header) or ()
    )
    if report_type == "feedback-report":
        feedback = _fields(parts, "message/feedback-report")
        kind = (feedback.get("feedback-type") or "abuse").lower()
        named = _addresses(feedback, "original-rcpt-to", "removal-recipient")
        verdicts = tuple(Verdict(a, Kind.COMPLAINT, None, kind) for a in named)
        return Report(
            original, returned_to, verdicts or (Verdict(None, Kind.COMPLAINT, None, kind),), "arf"
        )
    if report_type != "delivery-status":
        raise NotAReport(f"report-type {report_type!r} is neither a DSN nor ARF")
    found: list[Verdict] = []
    for block in _recipient_blocks(parts) or [{}]:
        status = (block.get("status") or "").strip()
        action = (block.get("action") or "").strip().lower()
        hard = action == "failed" and status.startswith("5")
        named = _addresses(block, "final-recipient", "original-recipient")
        found.append(
            Verdict(
                named[0] if named else None,
                Kind.HARD_BOUNCE if hard else Kind.SOFT_BOUNCE,
                status or None,
                block.get("diagnostic-code"),
                action or None,
            )
        )
    return Report(original, returned_to, tuple(found))


def _check_depth(message: Message) -> None:
    """Real reports nest two or three levels; reading deeper ones only costs (iteratively)."""
    pending = [(message, 1)]
    while pending:
        part, depth = pending.pop()
        if depth > MAX_MIME_DEPTH:
            raise NotAReport(f"MIME parts nested deeper than {MAX_MIME_DEPTH}")
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((child, depth + 1) for child in payload if isinstance(child, Message))


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


def _fields(parts: Sequence[Message], content_type: str) -> dict[str, str]:
    """The header-style fields of a report part's first block."""
    for part in parts:
        if part.get_content_type() != content_type:
            continue
        payload = part.get_payload()
        blocks = payload if isinstance(payload, list) else [part]
        if isinstance(payload, str):
            blocks = [email.message_from_string(payload, policy=email.policy.default)]
        chosen = blocks[0] if blocks else None
        if isinstance(chosen, Message):
            return {k.lower(): str(v) for k, v in chosen.items()}
    return {}
