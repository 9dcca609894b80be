"""The standard reports: delivery-status notifications (RFC 3464, and RFC 6533's global ones for
SMTPUTF8 addresses), abuse reports (ARF, RFC 5965) and Hotmail's complaints, which are ARF in
spirit but a multipart/mixed quoting the original.

Which kind a report is comes from its parts, not only from `report-type`: servers write the
parameter in upper case, leave it out, or wrap the report in multipart/mixed.
"""

from __future__ import annotations

import email
import email.policy
import re
from email.message import Message

from hub.channels.email.bounce_class import (
    MAX_CLUE,
    NOT_COMPLAINTS,
    classify,
    has_clue,
    is_specific,
    status_in,
)
from hub.channels.email.report_fields import (
    MAX_RECIPIENTS,
    address_in,
    blocks,
    first_address,
    human_text,
    loose_text,
    near,
    quoted_headers,
    quoted_message_id,
    returned_to,
    walk,
)
from hub.channels.email.report_types import Kind, Report, Verdict

STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
FEEDBACK_TYPE = "message/feedback-report"
# A DSN's fields in a body the parser could not split: a Final-Recipient line, then an Action
# line somewhere after it. Two searches, the second from where the first ended, so the time
# is linear (one pattern spanning the lines between was quadratic in them).
_FINAL_RECIPIENT = re.compile(r"^Final-Recipient:", re.I | re.M)
_ACTION = re.compile(r"^Action:", re.I | re.M)


def read_standard(message: Message) -> Report | None:
    """A DSN or an ARF report (also Hotmail's), else None."""
    parts = [part for part, _ in walk(message)]
    types = [part.get_content_type() for part in parts]
    report_type = str(message.get_param("report-type", "", header="content-type")).lower()
    for part, content_type in zip(parts, types, strict=True):
        if content_type in STATUS_TYPES:
            return _dsn(message, part)
        if content_type == FEEDBACK_TYPE:
            return _arf(message, part)
    if _looks_like_dsn(loose_text(message)):
        return _dsn(message, None)
    if report_type == "feedback-report":  # the report part is missing or mislabelled
        return _arf(message, None)
    return _hotmail_complaint(message)


def _looks_like_dsn(text: str) -> bool:
    """Whether an Action line follows a Final-Recipient line: when the first Final-Recipient
    has none after it, no later one has."""
    recipient = _FINAL_RECIPIENT.search(text)
    if recipient is None:
        return False
    line_end = text.find("\n", recipient.end())
    return line_end >= 0 and _ACTION.search(text, line_end + 1) is not None


def _dsn(message: Message, part: Message | None) -> Report | None:
    found = []
    text = human_text(message)
    recipient_blocks = [
        block
        for block in (blocks(part) if part is not None else _loose_blocks(message))
        # not the per-message block, nor one that says nothing
        if {"final-recipient", "original-recipient", "action", "status"} & block.keys()
    ][:MAX_RECIPIENTS]
    named = tuple(a for b in recipient_blocks for a in (address_in(b.get("final-recipient")),) if a)
    for block in recipient_blocks:
        address = address_in(block.get("original-recipient"), xtext=True) or address_in(
            block.get("final-recipient")
        )
        action = (block.get("action") or "").strip().lower() or None
        # What the classifier reads of it, and all a verdict carries on (see MAX_CLUE).
        diagnostic = (block.get("diagnostic-code") or "")[:MAX_CLUE] or None
        status = status_in(block.get("status"), success=True) or status_in(diagnostic)
        clue = diagnostic or ""
        if not is_specific(status) and not has_clue(clue):
            # `5.0.0` and no diagnostic: the human part often says why, and how exactly.
            clue = "\n".join((clue, near(text, address, named) or text))
            status = status_in(clue) if is_specific(status_in(clue)) else status
        kind = classify(action=action, status=status, detail=clue)
        found.append(Verdict(address, kind, status, diagnostic, action))
    if not found:  # a report part with no recipient in it: the detectors may find one
        return None
    return Report(quoted_message_id(message), returned_to(message), tuple(found), "dsn")


def _loose_blocks(message: Message) -> list[dict[str, str]]:
    """Delivery-status fields in a body the parser could not split (a wrong boundary)."""
    holder = email.message_from_string(
        "Content-Type: text/plain\n\n" + loose_text(message), policy=email.policy.compat32
    )
    return blocks(holder)


def _arf(message: Message, part: Message | None) -> Report:
    fields = blocks(part)[0] if part is not None and blocks(part) else {}
    feedback = (fields.get("feedback-type") or "abuse")[:MAX_CLUE].strip().lower()
    kind = Kind.NOT_BOUNCE if feedback in NOT_COMPLAINTS else Kind.COMPLAINT
    rcpt_to = (fields.get("original-rcpt-to") or "").splitlines()
    named = [address_in(value) for value in (*rcpt_to, fields.get("removal-recipient"))]
    addresses = [a for a in dict.fromkeys(named) if a][:MAX_RECIPIENTS]
    if not addresses:
        quoted = quoted_headers(message)
        to = first_address(str(quoted.get("To", ""))) if quoted is not None else None
        addresses = [to] if to else []
    verdicts = tuple(Verdict(a, kind, None, feedback) for a in addresses)
    return Report(
        quoted_message_id(message),
        returned_to(message),
        verdicts or (Verdict(None, kind, None, feedback),),
        "arf",
    )


def _hotmail_complaint(message: Message) -> Report | None:
    """Outlook.com/Hotmail's junk-mail reports: multipart/mixed, the original quoted as
    message/rfc822 with the person's address in X-HmXmrOriginalRecipient."""
    quoted = quoted_headers(message)
    if quoted is None or not message.is_multipart():
        return None
    recipient = quoted.get("X-HmXmrOriginalRecipient")
    if recipient is None:
        return None
    address = first_address(str(recipient))
    verdict = Verdict(address, Kind.COMPLAINT, None, "abuse")
    return Report(quoted_message_id(message), returned_to(message), (verdict,), "arf")
