"""SendGrid's Signed Event Webhook reaches a served hub: a batch signed with an ECDSA P-256 key
made here (as SendGrid signs: timestamp header + raw body, SHA-256, DER in base64), about
messages Hub really sent to an SMTP peer, so each event's smtp-id is Hub's Message-ID."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import mail_one, ok, peer_settings, timeline
from tests.peers.smtp import SmtpPeer
from tests.serving import serving

CONTENT = {"": {"email_subject": "News", "email_text": "Hello"}}
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


@dataclass
class Live:
    client: TestClient
    base: str
    auth: dict[str, str]
    smtp: SmtpPeer
    key: ec.EllipticCurvePrivateKey

    def mailed(self, external_id: str, address: str) -> str:
        """Send `address` one e-mail through Hub; the Message-ID the SMTP peer received."""
        _, delivery = mail_one(self.client, self.auth, external_id, address, content=CONTENT)
        assert delivery["state"] == "sent", delivery
        received = next(r for r in self.smtp.received if address in r.rcpt_tos)
        return str(received.message["Message-ID"])

    def post(self, body: bytes, *, age: float = 0, tamper: bool = False) -> httpx.Response:
        timestamp = str(int(time.time() - age))
        signature = self.key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        if tamper:
            body = body.replace(b"bounce", b"delivered")
        headers = {
            "content-type": "application/json",
            SIGNATURE: base64.b64encode(signature).decode(),
            TIMESTAMP: timestamp,
        }
        return httpx.post(
            f"{self.base}/inbound/email/sendgrid", content=body, headers=headers, timeout=30.0
        )

    def suppressions(self) -> dict[str, str]:
        body = ok(self.client.get("/v1/suppressions?channel=email", headers=self.auth))
        return {row["address"]: row["reason"] for row in body["items"]}

    def bounced(self, external_id: str) -> list[str]:
        events = timeline(self.client, self.auth, external_id)
        return [e["reason"] for e in events if e["type"] == "delivery.bounced"]


def verification_key(private: ec.EllipticCurvePrivateKey) -> str:
    """The public key as SendGrid shows it: base64 of the DER SubjectPublicKeyInfo."""
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def live(database_url: str) -> Iterator[Live]:
    private = ec.generate_private_key(ec.SECP256R1())
    with SmtpPeer() as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            sendgrid_webhook_public_key=verification_key(private),
            **peer_settings(smtp),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime)
        workers.start(sweep=False)
        app = create_app(runtime=runtime)
        try:
            with serving(app) as base:
                client = TestClient(app, raise_server_exceptions=False)
                auth = make_key(runtime, "sendgrid-test", Scope.CONTACTS, Scope.ADMIN)
                yield Live(client, base, auth, smtp, private)
        finally:
            workers.stop()
            runtime.close()


def event(name: str, address: str, message_id: str, n: int, **fields: Any) -> dict[str, Any]:
    """An event as SendGrid's documentation shows one."""
    return {
        "email": address,
        "timestamp": int(time.time()),
        "smtp-id": message_id,
        "event": name,
        "category": ["news"],
        "sg_event_id": f"sg-event-{n}-{message_id[5:20]}",
        "sg_message_id": f"14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.{n}",
    } | fields


def test_a_signed_batch_records_each_event_as_what_it_is(live: Live) -> None:
    ids = {
        name: live.mailed(name, f"{name}@example.com")
        for name in ("gone", "blocked", "angry", "fine")
    }
    batch = [
        event(
            "bounce",
            "gone@example.com",
            ids["gone"],
            1,
            type="bounce",
            status="5.1.1",
            reason="550 5.1.1 The email account that you tried to reach does not exist",
        ),
        event(
            "bounce",
            "blocked@example.com",
            ids["blocked"],
            2,
            type="blocked",
            status="5.7.1",
            reason="554 5.7.1 Service unavailable; client host blocked using Spamhaus",
        ),
        event("spamreport", "angry@example.com", ids["angry"], 3),
        event("delivered", "fine@example.com", ids["fine"], 4, response="250 OK"),
        {"event": "bounce"},  # unreadable: no address; the others are still recorded
    ]
    body = json.dumps(batch).encode()
    answer = live.post(body)
    assert answer.status_code == 200, answer.text
    summary = answer.json()
    assert (summary["received"], summary["matched"], summary["ignored"]) == (5, 3, 1)
    assert summary["invalid"] == 1
    assert summary["kinds"] == {
        "hard_bounce": 1,
        "blocked": 1,
        "complaint": 1,
        "not_bounce": 1,
    }
    assert [e["outcome"] for e in summary["events"]] == [
        "matched",
        "matched",
        "matched",
        "ignored",
        "invalid",
    ]
    # A block is recorded and shown, and suppresses nobody; a hard bounce and a complaint do.
    assert live.suppressions() == {
        "gone@example.com": "hard_bounce",
        "angry@example.com": "complaint",
    }
    assert live.bounced("gone") == ["hard_bounce"]
    assert live.bounced("blocked") == ["blocked"]
    assert live.bounced("fine") == []

    # SendGrid retries a batch it thinks failed: every event is acknowledged, none recounted.
    again = ok(live.post(body))
    assert (again["duplicates"], again["matched"]) == (3, 0)
    assert live.bounced("gone") == ["hard_bounce"]


def test_a_tampered_body_is_403_and_changes_nothing(live: Live) -> None:
    message_id = live.mailed("gone", "gone@example.com")
    batch = [event("bounce", "gone@example.com", message_id, 1, type="bounce", status="5.1.1")]
    answer = live.post(json.dumps(batch).encode(), tamper=True)
    assert answer.status_code == 403
    assert SIGNATURE in answer.json()["error"]["message"]
    assert live.suppressions() == {}
    assert live.bounced("gone") == []


def test_a_stale_timestamp_is_403_and_changes_nothing(live: Live) -> None:
    message_id = live.mailed("gone", "gone@example.com")
    batch = [event("bounce", "gone@example.com", message_id, 1, type="bounce", status="5.1.1")]
    answer = live.post(json.dumps(batch).encode(), age=11 * 60)
    assert answer.status_code == 403
    assert TIMESTAMP in answer.json()["error"]["message"]
    assert live.suppressions() == {}


def test_unsigned_requests_and_bodies_that_are_no_batch(live: Live) -> None:
    bare = httpx.post(f"{live.base}/inbound/email/sendgrid", json=[{"event": "open"}], timeout=30.0)
    assert bare.status_code == 403
    assert SIGNATURE in bare.json()["error"]["message"]
    not_a_batch = live.post(b'{"event": "bounce"}')
    assert not_a_batch.status_code == 422
    assert not_a_batch.json()["error"]["details"][0]["field"] == "body"


def test_a_bounce_naming_another_address_matches_nothing(live: Live) -> None:
    message_id = live.mailed("alice", "alice@example.com")
    batch = [event("bounce", "mallory@example.com", message_id, 1, type="bounce", status="5.1.1")]
    answer = ok(live.post(json.dumps(batch).encode()))
    assert (answer["matched"], answer["unmatched"]) == (0, 1)
    assert live.suppressions() == {}


def test_sendgrid_feedback_not_configured_is_403_saying_which_setting(settings: Settings) -> None:
    with TestClient(create_app(runtime=Runtime.build(settings))) as client:
        answer = client.post(
            "/inbound/email/sendgrid",
            json=[{"event": "bounce"}],
            headers={SIGNATURE: "MEUCIQ==", TIMESTAMP: str(int(time.time()))},
        )
    assert answer.status_code == 403
    assert "set HUB_SENDGRID_WEBHOOK_PUBLIC_KEY" in answer.json()["error"]["message"]


@contextmanager
def timeline_refusing(database_url: str, external_id: str) -> Iterator[None]:
    """The database refuses every timeline event of one contact (a trigger raises), as a
    constraint or a bug would: the real error, from the real database, inside Hub's savepoint."""
    engine = create_engine(database_url)
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as db:
        contact = db.execute(
            text("SELECT id FROM contacts WHERE external_id = :x"), {"x": external_id}
        ).scalar_one()
        if postgres:
            db.execute(
                text(
                    "CREATE FUNCTION refuse_events() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    f"BEGIN IF NEW.contact_id = {contact} THEN "
                    "RAISE EXCEPTION 'refused by the test'; END IF; RETURN NEW; END $$"
                )
            )
            db.execute(
                text(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON contact_events "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_events()"
                )
            )
        else:
            db.execute(
                text(
                    "CREATE TRIGGER refuse_events BEFORE INSERT ON contact_events "
                    f"WHEN NEW.contact_id = {contact} "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
                )
            )
    try:
        yield
    finally:
        with engine.begin() as db:
            db.execute(
                text("DROP TRIGGER refuse_events" + (" ON contact_events" if postgres else ""))
            )
            if postgres:
                db.execute(text("DROP FUNCTION refuse_events()"))
        engine.dispose()


def test_an_event_that_cannot_be_recorded_is_kept_for_staff_and_loses_none_of_the_others(
    live: Live, database_url: str
) -> None:
    """The batch is answered 200, so SendGrid never sends the failed event again: it is kept
    among the unmatched reports, saying why, and the bounce beside it is still recorded. The
    batch sent again counts both as duplicates and keeps nothing twice."""
    odd_id = live.mailed("odd", "odd@example.com")
    gone_id = live.mailed("gone", "gone@example.com")
    batch = [
        event("bounce", "odd@example.com", odd_id, 1, type="bounce", status="5.1.1"),
        event("bounce", "gone@example.com", gone_id, 2, type="bounce", status="5.1.1"),
    ]
    body = json.dumps(batch).encode()
    with timeline_refusing(database_url, "odd"):
        answer = ok(live.post(body))
        again = ok(live.post(body))
    assert [e["outcome"] for e in answer["events"]] == ["failed", "matched"]
    assert (answer["failed"], answer["matched"]) == (1, 1)
    why = answer["events"][0]["why"]
    assert re.fullmatch(r"could not be recorded: \w+Error; kept as unmatched report \d+", why)
    (kept,) = ok(live.client.get("/v1/bounces/unmatched", headers=live.auth))["items"]
    assert kept["why"] == why.partition(";")[0]
    assert (kept["kind"], kept["message_id"], kept["status"]) == ("hard_bounce", odd_id, "5.1.1")
    assert kept["recipients"] == "odd@example.com"
    assert live.suppressions() == {"gone@example.com": "hard_bounce"}
    assert live.bounced("odd") == []
    assert (again["duplicates"], again["failed"]) == (2, 0)
    assert len(ok(live.client.get("/v1/bounces/unmatched", headers=live.auth))["items"]) == 1
