"""What SES and SendGrid events mean for Hub (hard, soft, blocked, complaint, not a bounce), and
SendGrid's ECDSA signature, read without HTTP or a database."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from hub.channels.email.reports import Kind
from hub.services.esp_feedback import sendgrid, ses, statuses
from hub.services.esp_feedback.problems import Malformed, Refused
from hub.settings import Settings
from tests.peers import ses as events

KEY = "hub-12-34-abcdefghijklmnop"
MESSAGE_ID = f"<{KEY}@example.com>"
VERP = f"bounces+{KEY}@example.com"
TO = "Alice@Example.com"


def mail(**options: Any) -> dict[str, Any]:
    return events.mail(message_id=MESSAGE_ID, source=VERP, to=TO, **options)


@pytest.mark.parametrize(
    ("bounce_type", "sub_type", "status", "diagnostic", "kind"),
    [
        ("Permanent", "General", "5.1.1", "smtp; 550 5.1.1 user unknown", Kind.HARD_BOUNCE),
        ("Permanent", "NoEmail", "5.0.0", "smtp; 550 no such user", Kind.HARD_BOUNCE),
        ("Permanent", "General", None, None, Kind.HARD_BOUNCE),
        ("Permanent", "Suppressed", "5.1.1", "Amazon SES has suppressed", Kind.HARD_BOUNCE),
        ("Permanent", "OnAccountSuppressionList", None, None, Kind.HARD_BOUNCE),
        # SES files spam blocks as Permanent/General: the receiver's 5.7.1 says otherwise.
        ("Permanent", "General", "5.7.1", "smtp; 550 5.7.1 Message rejected as spam", Kind.BLOCKED),
        ("Permanent", "General", "5.0.0", "smtp; 554 5.7.1 blocked by policy", Kind.BLOCKED),
        ("Permanent", "MailboxFull", "5.2.2", "smtp; 552 mailbox full", Kind.SOFT_BOUNCE),
        ("Permanent", "MessageTooLarge", "5.3.4", "smtp; 552 too large", Kind.SOFT_BOUNCE),
        ("Transient", "MailboxFull", "4.2.2", "smtp; 452 4.2.2 over quota", Kind.SOFT_BOUNCE),
        ("Transient", "General", "4.4.7", "smtp; expired after retrying", Kind.SOFT_BOUNCE),
        ("Transient", "ContentRejected", "5.7.1", "smtp; 550 content", Kind.BLOCKED),
        ("Transient", "AttachmentRejected", "5.7.1", "smtp; 552 attachment", Kind.BLOCKED),
        ("Undetermined", "Undetermined", None, None, Kind.SOFT_BOUNCE),
        ("Undetermined", "Undetermined", "5.1.1", "smtp; 550 5.1.1 unknown", Kind.HARD_BOUNCE),
    ],
)
@pytest.mark.parametrize("publishing", [False, True])
def test_ses_bounces_are_hard_only_for_a_mailbox_that_does_not_exist(
    bounce_type: str,
    sub_type: str,
    status: str | None,
    diagnostic: str | None,
    kind: Kind,
    publishing: bool,
) -> None:
    event = events.bounce(
        mail(),
        bounce_type=bounce_type,
        sub_type=sub_type,
        status=status,
        diagnostic=diagnostic,
        publishing=publishing,
    )
    report = ses.report(event)
    (verdict,) = report.verdicts
    assert (verdict.address, verdict.kind, verdict.action) == ("alice@example.com", kind, "failed")
    assert (verdict.status is None) is (status is None)
    assert report.source == "ses"


def test_ses_events_name_hubs_message_id_and_verp_address_not_sess_own() -> None:
    event = events.bounce(
        mail(), bounce_type="Permanent", sub_type="General", status="5.1.1", diagnostic=None
    )
    report = ses.report(event)
    assert report.message_id == MESSAGE_ID  # from mail.headers, not commonHeaders.messageId
    assert report.returned_to == (VERP,)
    bare = events.bounce(
        mail(headers=False),
        bounce_type="Permanent",
        sub_type="General",
        status=None,
        diagnostic=None,
    )
    # Without the headers only SES's own id is quoted; the VERP source still names Hub's key.
    report = ses.report(bare)
    assert report.message_id is not None
    assert KEY not in report.message_id
    assert report.returned_to == (VERP,)


@pytest.mark.parametrize(
    ("feedback", "kind"),
    [
        ("abuse", Kind.COMPLAINT),
        (None, Kind.COMPLAINT),  # many mailbox providers send no type at all
        ("fraud", Kind.COMPLAINT),
        ("not-spam", Kind.NOT_BOUNCE),
        ("auth-failure", Kind.NOT_BOUNCE),
        ("dkim", Kind.NOT_BOUNCE),  # the ARF reader's list (bounce_class.NOT_COMPLAINTS)
    ],
)
def test_ses_complaints_suppress_unless_they_say_not_spam(feedback: str | None, kind: Kind) -> None:
    (verdict,) = ses.report(events.complaint(mail(), feedback_type=feedback)).verdicts
    assert (verdict.address, verdict.kind) == ("alice@example.com", kind)


def test_ses_deliveries_opens_and_delays_are_not_bounces() -> None:
    for name in ("Delivery", "Send", "Open", "Click", "DeliveryDelay", "Reject"):
        event = events.delivery(mail()) | {"eventType": name}
        report = ses.report(event)
        assert report.kind is Kind.NOT_BOUNCE
        assert report.recipients == ("alice@example.com",)


@pytest.mark.parametrize(
    "event",
    [{}, {"notificationType": "Bounce"}, {"notificationType": "Bounce", "mail": {}}],
)
def test_what_is_not_an_ses_event_is_malformed_naming_the_message(event: dict[str, Any]) -> None:
    with pytest.raises(Malformed) as malformed:
        ses.report(event)
    assert malformed.value.field == "Message"


# SendGrid --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def key_pair() -> tuple[ec.EllipticCurvePrivateKey, str]:
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, base64.b64encode(der).decode()


NOW = dt.datetime(2026, 12, 7, 2, 0, 0, tzinfo=dt.UTC)


def signed(private: ec.EllipticCurvePrivateKey, body: bytes, at: dt.datetime) -> tuple[str, str]:
    timestamp = str(int(at.timestamp()))
    signature = private.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(signature).decode(), timestamp


def test_a_batch_signed_with_the_webhooks_key_verifies(
    key_pair: tuple[ec.EllipticCurvePrivateKey, str],
) -> None:
    private, setting = key_pair
    body = json.dumps([{"email": "a@example.com", "event": "bounce"}]).encode()
    signature, timestamp = signed(private, body, NOW - dt.timedelta(minutes=9))
    key = sendgrid.public_key(setting)
    sendgrid.verify(body, signature=signature, timestamp=timestamp, key=key, now=NOW)
    assert sendgrid.public_key(setting) is key  # parsed once, not on every request
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # A PEM is taken too: the settings keep it as base64 DER.
    as_set = Settings(sendgrid_webhook_public_key=pem.decode()).sendgrid_webhook_public_key
    assert as_set == setting


@pytest.mark.parametrize(
    ("tamper", "header"),
    [
        ("body", sendgrid.SIGNATURE_HEADER),
        ("timestamp", sendgrid.SIGNATURE_HEADER),
        ("stale", sendgrid.TIMESTAMP_HEADER),
        ("future", sendgrid.TIMESTAMP_HEADER),
        ("no signature", sendgrid.SIGNATURE_HEADER),
        ("no timestamp", sendgrid.TIMESTAMP_HEADER),
        ("garbage signature", sendgrid.SIGNATURE_HEADER),
        ("garbage timestamp", sendgrid.TIMESTAMP_HEADER),
    ],
)
def test_a_tampered_unsigned_or_stale_batch_is_refused_naming_the_header(
    key_pair: tuple[ec.EllipticCurvePrivateKey, str], tamper: str, header: str
) -> None:
    private, setting = key_pair
    body = b'[{"email": "a@example.com", "event": "bounce"}]'
    moment = {"stale": NOW - dt.timedelta(minutes=11), "future": NOW + dt.timedelta(minutes=11)}
    signature: str | None
    timestamp: str | None
    signature, timestamp = signed(private, body, moment.get(tamper, NOW))
    if tamper == "body":
        body = body.replace(b"bounce", b"open")
    elif tamper == "timestamp":
        timestamp = str(int(timestamp) + 1)
    elif tamper == "no signature":
        signature = None
    elif tamper == "no timestamp":
        timestamp = None
    elif tamper == "garbage signature":
        signature = "%%%"
    elif tamper == "garbage timestamp":
        timestamp = "yesterday"
    with pytest.raises(Refused) as refused:
        sendgrid.verify(
            body,
            signature=signature,
            timestamp=timestamp,
            key=sendgrid.public_key(setting),
            now=NOW,
        )
    assert refused.value.field == header


def test_an_unset_key_says_which_setting() -> None:
    """(A key that is not P-256 stops Hub at start-up: tests/unit/test_feedback_settings.py.)"""
    with pytest.raises(Refused) as refused:
        sendgrid.public_key(None)
    assert "set HUB_SENDGRID_WEBHOOK_PUBLIC_KEY" in refused.value.message


def bounce(status: str, reason: str, **extra: str) -> dict[str, Any]:
    return {"event": "bounce", "type": "bounce", "status": status, "reason": reason} | extra


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (bounce("5.1.1", "550 5.1.1 unknown"), Kind.HARD_BOUNCE),
        (bounce("5.0.0", "550 5.1.1 <a@x>: User unknown"), Kind.HARD_BOUNCE),
        (bounce("5.2.2", "552 5.2.2 mailbox full"), Kind.SOFT_BOUNCE),
        (
            bounce("5.0.0", "550 quota", bounce_classification="Mailbox Unavailable"),
            Kind.SOFT_BOUNCE,
        ),
        (bounce("5.7.1", "554 5.7.1 spam"), Kind.BLOCKED),
        (bounce("5.0.0", "554 rejected", bounce_classification="Reputation"), Kind.BLOCKED),
        (bounce("5.0.0", "550 listed at Spamhaus", type="blocked"), Kind.BLOCKED),
        (bounce("4.0.0", "gave up after 72 hours"), Kind.SOFT_BOUNCE),
        ({"event": "spamreport"}, Kind.COMPLAINT),
        ({"event": "dropped", "reason": "Bounced Address", "status": "5.0.0"}, Kind.NOT_BOUNCE),
        ({"event": "deferred", "response": "451 4.7.1 try later"}, Kind.NOT_BOUNCE),
        ({"event": "delivered", "response": "250 OK"}, Kind.NOT_BOUNCE),
        ({"event": "open"}, Kind.NOT_BOUNCE),
        ({"event": "click", "url": "https://example.com/"}, Kind.NOT_BOUNCE),
        ({"event": "processed"}, Kind.NOT_BOUNCE),
    ],
)
def test_sendgrid_events_are_read_into_hubs_kinds(event: dict[str, Any], kind: Kind) -> None:
    full = event | {"email": "Alice@Example.com", "smtp-id": MESSAGE_ID, "sg_event_id": "ev1"}
    report = sendgrid.report(full)
    (verdict,) = report.verdicts
    assert (verdict.address, verdict.kind) == ("alice@example.com", kind)
    assert report.message_id == MESSAGE_ID
    assert report.source == "sendgrid"
    assert sendgrid.receipt_id(full) == "sendgrid:ev1"


@pytest.mark.parametrize("event", [7, "bounce", {"email": "a@example.com"}, {"event": "bounce"}])
def test_an_unreadable_sendgrid_event_is_a_bad_event(event: Any) -> None:
    with pytest.raises(sendgrid.BadEvent):
        sendgrid.report(event)


@pytest.mark.parametrize("body", [b"{}", b"not json", b'{"event": "bounce"}'])
def test_a_sendgrid_body_that_is_no_array_is_malformed(body: bytes) -> None:
    with pytest.raises(Malformed) as malformed:
        sendgrid.events(body)
    assert malformed.value.field == "body"


def test_a_generic_status_gives_way_to_the_code_the_diagnostic_quotes() -> None:
    assert statuses.best_status("5.0.0", "550 5.1.1 user unknown") == "5.1.1"
    assert statuses.best_status("5.2.2", "550 5.1.1 user unknown") == "5.2.2"
    assert statuses.best_status(None, "no code here") is None


@pytest.mark.parametrize(
    ("status", "detail", "code"),
    [
        ("5.1.1 (" + "the provider's own words " * 5 + ")", None, "5.1.1"),
        ("smtp; 550 5.7.1 blocked", None, "5.7.1"),
        ("550", None, "5.0.0"),
        ("not a status at all, and long " * 4, "552 5.2.2 over quota", "5.2.2"),
        ("not a status at all, and long " * 4, None, None),
    ],
)
def test_only_the_status_code_is_recorded_never_the_providers_whole_field(
    status: str, detail: str | None, code: str | None
) -> None:
    """The receipt's and the unmatched report's status columns hold 32 characters; a long
    SES or SendGrid status was a DataError on PostgreSQL."""
    assert statuses.best_status(status, detail) == code
    assert statuses.kind_of("4.2.2", "mailbox full", gave_up=False) is Kind.NOT_BOUNCE
    assert statuses.kind_of("2.0.0", "delivered", gave_up=True) is Kind.NOT_BOUNCE
