"""Amazon SES bounces and complaints reach a served hub the way SNS delivers them: an HTTP/S
subscription's signed POSTs (SignatureVersion 1 and 2), the certificate fetched over real HTTP
from a local stand-in for sns.<region>.amazonaws.com, about a message Hub really sent to an
SMTP peer (so its Message-ID and VERP address carry Hub's key).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import mail_one, ok, peer_settings, timeline
from tests.peers import ses
from tests.peers.smtp import SmtpPeer
from tests.peers.sns import CERT_PATH, TOPIC, SnsHost, SnsSigner, certificate, sns_host
from tests.serving import serving

CONTENT = {"": {"email_subject": "News", "email_text": "Hello"}}
# httpx's default 5 s read timeout: a loaded CI machine (2 CPUs, two test workers, PostgreSQL)
# once took longer to answer a stale message's 403 than that.
SLOW_CI = 30.0


@dataclass
class Sent:
    external_id: str
    address: str
    notification_id: int
    delivery_id: int
    message_id: str  # the Message-ID header the SMTP peer received
    mail_from: str  # the envelope sender: Hub's VERP address


@dataclass
class Live:
    client: TestClient  # the public API, for setting up and looking
    base: str  # the served hub, where SNS posts
    auth: dict[str, str]
    smtp: SmtpPeer
    host: SnsHost
    signer: SnsSigner

    def mailed(self, external_id: str, address: str) -> Sent:
        notification_id, delivery = mail_one(
            self.client, self.auth, external_id, address, content=CONTENT
        )
        assert delivery["state"] == "sent", delivery
        received = next(r for r in self.smtp.received if address in r.rcpt_tos)
        return Sent(
            external_id,
            address,
            notification_id,
            delivery["id"],
            str(received.message["Message-ID"]),
            received.mail_from,
        )

    def post(self, envelope: dict[str, Any], message_type: str | None = "default") -> Any:
        kind = envelope.get("Type") if message_type == "default" else message_type
        headers = {"content-type": "text/plain; charset=UTF-8"}
        if kind is not None:
            headers["x-amz-sns-message-type"] = str(kind)
        return httpx.post(
            f"{self.base}/inbound/email/ses",
            content=json.dumps(envelope),
            headers=headers,
            timeout=SLOW_CI,
        )

    def delivery_state(self, sent: Sent) -> str:
        body = ok(self.client.get(f"/v1/notifications/{sent.notification_id}", headers=self.auth))
        (delivery,) = body["deliveries"]["items"]
        return str(delivery["state"])

    def suppressions(self) -> dict[str, str]:
        body = ok(self.client.get("/v1/suppressions?channel=email", headers=self.auth))
        return {row["address"]: row["reason"] for row in body["items"]}

    def bounced(self, sent: Sent) -> list[Any]:
        return [
            e
            for e in timeline(self.client, self.auth, sent.external_id)
            if e["type"] == "delivery.bounced"
        ]

    def unmatched(self) -> list[Any]:
        items: list[Any] = ok(self.client.get("/v1/bounces/unmatched", headers=self.auth))["items"]
        return items


def mail_of(sent: Sent, *, headers: bool = True) -> dict[str, Any]:
    return ses.mail(
        message_id=sent.message_id, source=sent.mail_from, to=sent.address, headers=headers
    )


@pytest.fixture
def live(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    # The e-mail channel reads its own options from the environment: VERP on.
    monkeypatch.setenv("HUB_EMAIL_BOUNCE_ADDRESS", "bounces@example.com")
    with SmtpPeer() as smtp, sns_host() as host:
        signer = SnsSigner(host.certificate_url)
        host.pem = certificate(signer.key)
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            ses_topic_arns=[TOPIC],
            sns_certificate_url_pattern=host.pattern,
            **peer_settings(smtp),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime)
        workers.start(sweep=False)
        app = create_app(runtime=runtime)
        try:
            with serving(app) as base:
                client = TestClient(app, raise_server_exceptions=False)
                auth = make_key(runtime, "ses-test", Scope.CONTACTS, Scope.ADMIN)
                yield Live(client, base, auth, smtp, host, signer)
        finally:
            workers.stop()
            runtime.close()


def test_a_permanent_bounce_through_sns_bounces_the_delivery_and_suppresses(live: Live) -> None:
    sent = live.mailed("gone", "gone@example.com")
    assert sent.mail_from.startswith("bounces+hub-")
    event = ses.bounce(
        mail_of(sent),
        bounce_type="Permanent",
        sub_type="General",
        status="5.1.1",
        diagnostic="smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
    )
    answer = live.post(live.signer.notification(event, version="1"))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["received"], body["matched"], body["kinds"]) == (1, 1, {"hard_bounce": 1})
    assert body["events"][0]["delivery_id"] == sent.delivery_id
    assert live.delivery_state(sent) == "bounced"
    assert live.suppressions() == {"gone@example.com": "hard_bounce"}
    (bounced,) = live.bounced(sent)
    assert (bounced["reason"], bounced["changes"]["status"]) == ("hard_bounce", "5.1.1")
    assert live.host.requests == [CERT_PATH]


def test_a_retried_sns_message_counts_once(live: Live) -> None:
    sent = live.mailed("gone", "gone@example.com")
    event = ses.bounce(
        mail_of(sent), bounce_type="Permanent", sub_type="NoEmail", status=None, diagnostic=None
    )
    envelope = live.signer.notification(event, version="2")
    first, second = live.post(envelope).json(), live.post(envelope).json()
    assert (first["matched"], second["duplicates"], second["matched"]) == (1, 1, 0)
    assert len(live.bounced(sent)) == 1
    assert live.host.requests == [CERT_PATH]  # the certificate is fetched once, then kept


def test_a_full_mailbox_is_a_soft_bounce_and_suppresses_nobody(live: Live) -> None:
    sent = live.mailed("full", "full@example.com")
    event = ses.bounce(
        mail_of(sent),
        bounce_type="Transient",
        sub_type="MailboxFull",
        status="4.2.2",
        diagnostic="smtp; 452 4.2.2 The email account that you tried to reach is over quota",
        publishing=True,  # the event-publishing format of a configuration set
    )
    answer = ok(live.post(live.signer.notification(event, version="2")))
    assert (answer["matched"], answer["kinds"]) == (1, {"soft_bounce": 1})
    assert live.suppressions() == {}
    (bounced,) = live.bounced(sent)
    assert bounced["reason"] == "soft_bounce"


def test_a_complaint_found_by_the_verp_address_alone_suppresses(live: Live) -> None:
    sent = live.mailed("angry", "angry@example.com")
    # Without the original headers SES quotes only its own Message-ID; the VERP source names
    # Hub's delivery.
    event = ses.complaint(mail_of(sent, headers=False), feedback_type="abuse")
    answer = ok(live.post(live.signer.notification(event)))
    assert (answer["matched"], answer["kinds"]) == (1, {"complaint": 1})
    assert live.suppressions() == {"angry@example.com": "complaint"}


def test_deliveries_and_not_spam_are_acknowledged_and_change_nothing(live: Live) -> None:
    sent = live.mailed("fine", "fine@example.com")
    for event in (
        ses.delivery(mail_of(sent)),
        ses.complaint(mail_of(sent), feedback_type="not-spam"),
    ):
        answer = ok(live.post(live.signer.notification(event)))
        assert (answer["ignored"], answer["matched"]) == (1, 0)
    assert live.delivery_state(sent) == "sent"
    assert live.suppressions() == {}
    assert live.bounced(sent) == []


def test_a_bounce_for_another_address_matches_nothing_and_is_kept(live: Live) -> None:
    sent = live.mailed("alice", "alice@example.com")
    other = mail_of(sent) | {"destination": ["mallory@example.com"]}
    event = ses.bounce(
        other, bounce_type="Permanent", sub_type="General", status="5.1.1", diagnostic=None
    )
    answer = ok(live.post(live.signer.notification(event)))
    assert (answer["matched"], answer["unmatched"]) == (0, 1)
    assert live.suppressions() == {}
    assert live.delivery_state(sent) == "sent"
    assert len(live.unmatched()) == 1


def test_a_bounce_of_a_message_that_is_not_hubs_is_answered_and_not_kept(live: Live) -> None:
    """No key of Hub's in the Message-ID or the envelope sender: anyone's mail, not kept
    (kept, such events filled the unmatched list without limit)."""
    stranger = ses.mail(
        message_id="<elsewhere-1@example.net>", source="news@example.net", to="x@example.org"
    )
    event = ses.bounce(
        stranger, bounce_type="Permanent", sub_type="General", status="5.1.1", diagnostic=None
    )
    answer = ok(live.post(live.signer.notification(event)))
    assert (answer["matched"], answer["unmatched"]) == (0, 1)
    assert "not kept" in answer["events"][0]["why"]
    assert live.unmatched() == []
    assert live.suppressions() == {}


def test_a_certificate_issued_to_another_name_is_refused_and_not_fetched_again(
    live: Live,
) -> None:
    """SNS's signing certificates are issued to sns.amazonaws.com; a certificate for any other
    name is not SNS's. A URL whose fetch failed is not fetched again for a while, so posting
    envelopes that name it cannot make Hub fetch it again and again."""
    live.host.pem = certificate(live.signer.key, "sns.eu-west-1.amazonaws.com")  # not SNS's name
    sent = live.mailed("gone", "gone@example.com")
    event = ses.bounce(
        mail_of(sent), bounce_type="Permanent", sub_type="General", status="5.1.1", diagnostic=None
    )
    first = live.post(live.signer.notification(event))
    assert first.status_code == 403, first.text
    message = first.json()["error"]["message"]
    assert message.startswith("SigningCertURL:")
    assert "sns.amazonaws.com" in message
    live.host.pem = certificate(live.signer.key)  # the host mends its certificate
    for _ in range(3):
        again = live.post(live.signer.notification(event))
        assert again.status_code == 403
        assert "not fetched again until" in again.json()["error"]["message"]
    assert live.host.requests == [CERT_PATH]
    assert live.delivery_state(sent) == "sent"
    assert live.suppressions() == {}


@pytest.mark.parametrize("tamper", ["message", "signature", "stranger"])
def test_a_bad_signature_is_403_and_changes_nothing(live: Live, tamper: str) -> None:
    sent = live.mailed("gone", "gone@example.com")
    event = ses.bounce(
        mail_of(sent), bounce_type="Permanent", sub_type="General", status="5.1.1", diagnostic=None
    )
    envelope = live.signer.notification(event)
    if tamper == "message":
        envelope["Message"] = envelope["Message"].replace("gone@", "else@")
    elif tamper == "signature":
        flipped = bytes(b ^ 1 for b in base64.b64decode(envelope["Signature"]))
        envelope["Signature"] = base64.b64encode(flipped).decode()
    else:  # signed by another key, pointing at the real certificate
        envelope = SnsSigner(live.host.certificate_url).notification(event)
    answer = live.post(envelope)
    assert answer.status_code == 403, answer.text
    assert "Signature" in answer.json()["error"]["message"]
    assert live.suppressions() == {}
    assert live.delivery_state(sent) == "sent"
    assert live.bounced(sent) == []
    assert live.unmatched() == []


def test_a_topic_not_configured_is_403_before_anything_is_fetched(live: Live) -> None:
    event = {"notificationType": "Bounce", "bounce": {}, "mail": {}}
    other = "arn:aws:sns:eu-west-1:999999999999:someone-elses-topic"
    answer = live.post(live.signer.notification(event, topic=other))
    assert answer.status_code == 403
    assert "TopicArn" in answer.json()["error"]["message"]
    assert live.host.requests == []


def test_a_certificate_on_another_host_is_403_and_never_fetched(live: Live) -> None:
    with sns_host() as attacker:
        forger = SnsSigner(attacker.certificate_url)
        attacker.pem = certificate(forger.key)
        event = {"notificationType": "Complaint", "complaint": {}, "mail": {}}
        answer = live.post(forger.notification(event))
        assert answer.status_code == 403
        assert "SigningCertURL" in answer.json()["error"]["message"]
        assert attacker.requests == []
    assert live.host.requests == []


def test_a_stale_message_is_403(live: Live) -> None:
    old = dt.datetime.now(dt.UTC) - dt.timedelta(hours=3)
    event = {"notificationType": "Bounce", "bounce": {}, "mail": {}}
    answer = live.post(live.signer.notification(event, at=old))
    assert answer.status_code == 403
    assert "Timestamp" in answer.json()["error"]["message"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_subscription_confirmation_is_confirmed_on_the_sns_host(live: Live, version: str) -> None:
    envelope = live.signer.subscription(version=version)
    answer = ok(live.post(envelope))
    assert TOPIC in answer["note"]
    assert live.host.confirmed == [envelope["Token"]]
    goodbye = ok(live.post(live.signer.subscription(kind="UnsubscribeConfirmation")))
    assert "unsubscribed" in goodbye["note"]
    assert len(live.host.confirmed) == 1  # an unsubscribe confirmation is not followed


def test_a_subscribe_url_on_another_host_is_never_called(live: Live) -> None:
    with sns_host() as elsewhere:
        envelope = live.signer.subscription(subscribe_origin=elsewhere.url)
        answer = live.post(envelope)
        assert answer.status_code == 403
        assert "SubscribeURL" in answer.json()["error"]["message"]
        assert elsewhere.requests == []


@pytest.mark.parametrize(
    ("change", "message_type", "field"),
    [
        ({}, None, "x-amz-sns-message-type"),
        ({"Type": "Notification"}, "SubscriptionConfirmation", "x-amz-sns-message-type"),
        ({"MessageId": ""}, "default", "MessageId"),
        ({"Message": "not json"}, "default", "Message"),
    ],
)
def test_what_is_not_an_sns_message_is_422_naming_the_field(
    live: Live, change: dict[str, Any], message_type: str | None, field: str
) -> None:
    envelope = live.signer.notification({"notificationType": "Bounce"})
    if "Message" in change:
        envelope = live.signer.notification(change["Message"])
    else:
        envelope |= change
    answer = live.post(envelope, message_type)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"] == field


def test_ses_feedback_not_configured_is_403_saying_which_setting(settings: Settings) -> None:
    with (
        TestClient(create_app(runtime=Runtime.build(settings))) as client,
        sns_host() as host,
    ):
        envelope = SnsSigner(host.certificate_url).notification({"notificationType": "Bounce"})
        answer = client.post(
            "/inbound/email/ses",
            content=json.dumps(envelope),
            headers={"x-amz-sns-message-type": "Notification"},
        )
        assert answer.status_code == 403
        assert "set HUB_SES_TOPIC_ARNS" in answer.json()["error"]["message"]
        assert host.requests == []


def test_an_unreachable_database_is_503_so_sns_retries(tmp_path: Any) -> None:
    with sns_host() as host:
        signer = SnsSigner(host.certificate_url)
        host.pem = certificate(signer.key)
        settings = Settings(
            # Nothing listens on port 9 of loopback: every connection is refused.
            database_url="postgresql+psycopg://postgres@127.0.0.1:9/hub?connect_timeout=2",
            secret_key=TEST_SECRET,
            ses_topic_arns=[TOPIC],
            sns_certificate_url_pattern=host.pattern,
        )
        runtime = Runtime.build(settings)
        try:
            with serving(create_app(runtime=runtime)) as base:
                event = {"notificationType": "Complaint", "complaint": {}, "mail": {}}
                envelope = signer.notification(event)
                answer = httpx.post(
                    f"{base}/inbound/email/ses",
                    content=json.dumps(envelope),
                    headers={"x-amz-sns-message-type": "Notification"},
                    timeout=30,
                )
        finally:
            runtime.close()
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "30"
