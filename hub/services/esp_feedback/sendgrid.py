"""SendGrid's signed event webhook: its ECDSA signature, and its events read into Hub's reports.

SendGrid signs the timestamp header followed by the raw body with ECDSA P-256 / SHA-256 and
sends the DER signature in base64; the key it shows as "Verification Key" is a base64 DER
SubjectPublicKeyInfo (HUB_SENDGRID_WEBHOOK_PUBLIC_KEY). A body is a JSON array of events, one
recipient each; `smtp-id` is the original's Message-ID, which carries Hub's key.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.channels.email.reports import Kind, Report, Verdict
from hub.services.esp_feedback import statuses
from hub.services.esp_feedback.fields import text
from hub.services.esp_feedback.problems import Malformed, Refused

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
KEY_SETTING = "HUB_SENDGRID_WEBHOOK_PUBLIC_KEY"
# A signed batch replayed later than this is refused: SendGrid signs each attempt afresh.
MAX_AGE = dt.timedelta(minutes=10)


class BadEvent(ValueError):
    """One event of a batch Hub cannot read; the others are still recorded."""


def public_key(setting: str | None) -> ec.EllipticCurvePublicKey:
    """The configured key (base64 DER of a P-256 key: the settings check it at start-up).
    Raises Refused when it is unset."""
    if not setting:
        raise Refused(SIGNATURE_HEADER, f"SendGrid feedback is not configured: set {KEY_SETTING}")
    return _loaded(setting)


@functools.lru_cache(maxsize=4)
def _loaded(setting: str) -> ec.EllipticCurvePublicKey:
    """The key, parsed once per setting rather than on every request (a process has one)."""
    key = serialization.load_der_public_key(base64.b64decode(setting))
    assert isinstance(key, ec.EllipticCurvePublicKey)  # the settings let no other through
    return key


def verify(
    body: bytes,
    *,
    signature: str | None,
    timestamp: str | None,
    key: ec.EllipticCurvePublicKey,
    now: dt.datetime,
) -> None:
    """Raises Refused naming the header unless SendGrid signed `body` at `timestamp`, lately."""
    if not signature:
        raise Refused(SIGNATURE_HEADER, "header is missing")
    if not timestamp:
        raise Refused(TIMESTAMP_HEADER, "header is missing")
    try:
        signed_at = dt.datetime.fromtimestamp(int(timestamp.strip()), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise Refused(TIMESTAMP_HEADER, "is not a Unix time in seconds") from None
    try:
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise Refused(SIGNATURE_HEADER, "does not match the timestamp and the body") from None
    # Checked after the signature, so a stale answer is given only to SendGrid's own requests.
    if signed_at < now - MAX_AGE:
        raise Refused(TIMESTAMP_HEADER, "is more than 10 minutes old: a replay")
    if signed_at > now + MAX_AGE:
        raise Refused(TIMESTAMP_HEADER, "is more than 10 minutes in the future")


def events(body: bytes) -> list[Any]:
    """The batch. Raises Malformed("body") unless it is a JSON array."""
    try:
        batch = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("body", "is not JSON") from None
    if not isinstance(batch, list):
        raise Malformed("body", "is not a JSON array of SendGrid events")
    return batch


def receipt_id(event: Any) -> str | None:
    """A stable id of the event, to act on a retried batch's events once."""
    if isinstance(event, dict) and isinstance(event.get("sg_event_id"), str):
        return "sendgrid:" + str(event["sg_event_id"])[:54]
    return None


def report(event: Any) -> Report:
    """What one event says of its recipient. Raises BadEvent when it is not an event."""
    if not isinstance(event, dict):
        raise BadEvent("an event is not a JSON object")
    name = event.get("event")
    if not isinstance(name, str) or not name:
        raise BadEvent("an event has no 'event' name")
    address = event.get("email")
    if not isinstance(address, str) or "@" not in address:
        raise BadEvent(f"a {name!r} event has no 'email' address")
    verdict = Verdict(address.strip().lower(), *_judge(name, event))
    message_id = text(event.get("smtp-id"))
    return Report(message_id, (), (verdict,), source="sendgrid")


def _judge(name: str, event: Mapping[str, Any]) -> tuple[Kind, str | None, str | None, str]:
    """(kind, status, detail, action) of one event."""
    status, reason = text(event.get("status")), text(event.get("reason"))
    if name == "bounce":
        kind = _bounce_kind(event, status, reason)
        return kind, statuses.best_status(status, reason), reason, "failed"
    if name == "spamreport":
        return Kind.COMPLAINT, None, "spamreport", "spamreport"
    if name == "dropped":
        # SendGrid did not send it, because of its own list (an address that bounced or
        # complained before, and was recorded then) or the message: not a new bounce.
        return Kind.NOT_BOUNCE, status, f"dropped: {reason or 'no reason given'}", "dropped"
    if name == "deferred":
        return Kind.NOT_BOUNCE, status, reason or text(event.get("response")), "delayed"
    return Kind.NOT_BOUNCE, None, name, name


# SendGrid's own bounce_classification, where it sends one, beside the receiver's status.
_CLASSIFIED = {
    "invalid address": Kind.HARD_BOUNCE,
    "mailbox unavailable": Kind.SOFT_BOUNCE,
    "technical": Kind.SOFT_BOUNCE,
    "content": Kind.BLOCKED,
    "reputation": Kind.BLOCKED,
    "frequency or volume too high": Kind.BLOCKED,
}


def _bounce_kind(event: Mapping[str, Any], status: str | None, reason: str | None) -> Kind:
    """`type: blocked` is SendGrid's word for a refusal of the message (spam, policy, a
    block list), not of the address; its bounce_classification, read from the same answer,
    comes before Hub's reading of the status."""
    if text(event.get("type")) == "blocked":
        return Kind.BLOCKED
    classified = _CLASSIFIED.get((text(event.get("bounce_classification")) or "").lower())
    return classified or statuses.kind_of(status, reason, gave_up=True)
