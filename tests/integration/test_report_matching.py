"""Issue 15.11: a bounce suppresses only the address it is about, from the installation that
sent it.

Message-IDs were `<hub-{notification}-{delivery}@domain>`, the same in every new database, and a
report was matched by that key (or the VERP address) alone: a staging instance's DSN for an
unknown user, posted to production, suppressed production's alice@. Keys now carry the
installation's random token and a keyed hash of the address, and a report must name the
delivery's own address.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from hub.db.models import Installation
from hub.domain import Scope
from hub.services.message_keys import MessageKeys, find
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, mail_one, ok, peer_settings
from tests.peers.smtp import SmtpPeer

# A Postfix DSN as Postfix writes it (bounce(8)), with the original's headers.
POSTFIX_DSN = """\
Return-Path: <>
Received: by mx.staging.example (Postfix)
\tid 4Vx1Qk2Lz9z9tKP; Mon,  7 Dec 2026 02:00:01 +0000 (UTC)
Date: Mon,  7 Dec 2026 02:00:01 +0000 (UTC)
From: MAILER-DAEMON@mx.staging.example (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="4Vx1Qk2Lz9z9tKP.1765072801/mx.staging.example"
Message-Id: <20261207020001.4Vx1Qk2Lz9z9tKP@mx.staging.example>

This is a MIME-encapsulated message.

--4Vx1Qk2Lz9z9tKP.1765072801/mx.staging.example
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.staging.example.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

<{rcpt}>: host mail.example.org[192.0.2.25] said: 550 5.1.1 <{rcpt}>:
    Recipient address rejected: User unknown in virtual mailbox table (in reply
    to RCPT TO command)

--4Vx1Qk2Lz9z9tKP.1765072801/mx.staging.example
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.staging.example
X-Postfix-Queue-ID: 4Vx1Qk2Lz9z9tKP
X-Postfix-Sender: rfc822; {to}
Arrival-Date: Mon,  7 Dec 2026 02:00:00 +0000 (UTC)

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.example.org
Diagnostic-Code: smtp; 550 5.1.1 <{rcpt}>: Recipient address rejected: User
    unknown in virtual mailbox table

--4Vx1Qk2Lz9z9tKP.1765072801/mx.staging.example
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Hub <hub@example.com>
To: {rcpt}
Subject: News
Message-ID: {message_id}

--4Vx1Qk2Lz9z9tKP.1765072801/mx.staging.example--
"""
CONTENT = {"": {"email_subject": "News", "email_text": "Hello"}}


def dsn(rcpt: str, message_id: str, to: str = "hub@example.com") -> bytes:
    return (
        POSTFIX_DSN.format(rcpt=rcpt, message_id=message_id, to=to).replace("\n", "\r\n").encode()
    )


def post_report(client: TestClient, auth: dict[str, str], raw: bytes) -> Any:
    headers = auth | {"content-type": "message/rfc822"}
    return ok(client.post("/inbound/email/bounce", content=raw, headers=headers), 202)


def test_keys_are_an_installations_and_an_addresss_own() -> None:
    here = MessageKeys.from_secret("one secret", "aaaaaa")
    there = MessageKeys.from_secret("one secret", "bbbbbb")
    key = here.key(1, 1, "alice@example.com")
    assert re.fullmatch(r"hub-1-1-aaaaaa[a-z2-7]{10}", key)
    assert key != there.key(1, 1, "alice@example.com")  # another installation
    assert key != here.key(1, 1, "bob@example.com")  # another address
    assert key == here.key(1, 1, " Alice@Example.COM ")  # the same address, spelt otherwise
    found = find(f"<{key}@example.com>")
    assert found is not None
    assert here.sent_to(found, "alice@example.com")
    assert not here.sent_to(found, "bob@example.com")
    assert not there.sent_to(found, "alice@example.com")
    assert find("bounces+hub-7-9@example.com") == find("<hub-7-9@x>")  # untagged, from before


def test_a_staging_bounce_never_suppresses_productions_address(
    settings: Settings, sqlite_template: Path, tmp_path: Path
) -> None:
    staging_db = tmp_path / "staging.db"
    shutil.copy(sqlite_template, staging_db)
    staging = Settings(database_url=f"sqlite:///{staging_db}", secret_key=TEST_SECRET)
    with hub_running(staging) as (client, runtime):
        with runtime.sessions() as session:  # a separate install: its own token
            session.execute(update(Installation).values(token="stagin"))
            session.commit()
        auth = make_key(runtime, "admin", Scope.ADMIN)
        mail_one(client, auth, "nobody", "nobody@example.org", content=CONTENT)
        staging_keys = MessageKeys.from_secret(TEST_SECRET, "stagin")
    staging_message_id = f"<{staging_keys.key(1, 1, 'nobody@example.org')}@example.com>"

    with (
        SmtpPeer() as smtp,
        hub_running(settings.model_copy(update=peer_settings(smtp))) as (
            client,
            runtime,
        ),
    ):
        auth = make_key(runtime, "admin", Scope.ADMIN)
        _, delivery = mail_one(client, auth, "alice", "alice@example.org", content=CONTENT)
        assert (delivery["id"], delivery["state"]) == (1, "sent")  # the same ids as staging's
        (mail,) = smtp.wait_for(1)
        ours = str(mail.message["Message-ID"])
        token = runtime.message_keys.installation
        assert re.fullmatch(rf"<hub-1-1-{token}[a-z2-7]{{10}}@example\.com>", ours), ours
        assert ours != staging_message_id
        assert mail.mail_from == "hub@example.com"  # no VERP address configured here

        cases = [
            dsn("nobody@example.org", staging_message_id),  # staging's, as it was
            dsn("alice@example.org", staging_message_id),  # staging's key, our address
            dsn("nobody@example.org", ours),  # our key, another address
            dsn("alice@example.org", "<hub-1-1@example.com>"),  # an untagged key, forged
        ]
        for raw in cases:
            answer = post_report(client, auth, raw)
            assert answer["matched"] is False, answer
            assert answer["suppressed"] is False
        assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []
        state = ok(client.get("/v1/notifications/1", headers=auth))["deliveries"]["items"][0]
        assert state["state"] == "sent"
        kept = ok(client.get("/v1/bounces/unmatched", headers=auth))["items"]
        assert len(kept) == len(cases)
        assert {k["recipients"] for k in kept} == {"nobody@example.org", "alice@example.org"}
        assert all(k["kind"] == "hard_bounce" and k["why"] for k in kept)

        # The real one: our key, for the address it went to.
        answer = post_report(client, auth, dsn("alice@example.org", ours))
        assert answer["matched"] is True
        assert answer["suppressed"] is True
        (row,) = ok(client.get("/v1/suppressions", headers=auth))["items"]
        assert (row["address"], row["reason"]) == ("alice@example.org", "hard_bounce")


def test_a_copy_of_the_database_elsewhere_still_cannot_match_another_address(
    settings: Settings,
) -> None:
    """A staging copy restored from production shares its token and secret: its keys for
    delivery 1 are made the same way, and only the address tells its reports from ours."""
    with hub_running(settings) as (client, runtime):
        auth = make_key(runtime, "admin", Scope.ADMIN)
        mail_one(client, auth, "alice", "alice@example.org", content=CONTENT)
        keys = runtime.message_keys
        copied = f"<{keys.key(1, 1, 'nobody@example.org')}@example.com>"  # what the copy sent
        answer = post_report(client, auth, dsn("nobody@example.org", copied))
        assert answer["matched"] is False
        assert "was not sent to nobody@example.org" in answer["why"]
        state = ok(client.get("/v1/notifications/1", headers=auth))["deliveries"]["items"][0]
        assert state["state"] == "sent"
        assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []


TWO_RECIPIENTS = """\
From: MAILER-DAEMON@relay.example (Mail Delivery System)
To: hub@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="TWO"

--TWO
Content-Type: text/plain; charset=us-ascii

One recipient's mailbox does not exist; for the other the relay gave up after five days.

--TWO
Content-Type: message/delivery-status

Reporting-MTA: dns; relay.example

Final-Recipient: rfc822; {ours}
Action: failed
Status: 4.4.7
Diagnostic-Code: smtp; 451 4.4.7 delivery time expired

Final-Recipient: rfc822; {other}
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <{other}>: user unknown

--TWO
Content-Type: text/rfc822-headers

From: Hub <hub@example.com>
Subject: News
Message-ID: {message_id}

--TWO--
"""


def test_a_report_on_several_recipients_acts_on_the_verdict_about_the_deliverys_own(
    settings: Settings,
) -> None:
    """The report's headline is another recipient's hard bounce (the message went to both
    through one relay); for this delivery's address the relay gave up: the delivery fails as
    a soft bounce and nobody is suppressed. Sent twice, it counts once."""
    with hub_running(settings) as (client, runtime):
        auth = make_key(runtime, "admin", Scope.ADMIN)
        notification_id, sent = mail_one(
            client, auth, "alice", "alice@example.org", content=CONTENT
        )
        key = runtime.message_keys.key(notification_id, sent["id"], "alice@example.org")
        raw = TWO_RECIPIENTS.format(
            ours="alice@example.org", other="bob@example.org", message_id=f"<{key}@example.com>"
        )
        body = raw.replace("\n", "\r\n").encode()
        answer = post_report(client, auth, body)
        assert (answer["matched"], answer["kind"], answer["suppressed"]) == (
            True,
            "soft_bounce",
            False,
        )
        state = ok(client.get(f"/v1/notifications/{notification_id}", headers=auth))
        (delivery,) = state["deliveries"]["items"]
        assert (delivery["state"], delivery["reason"]) == ("failed", "soft_bounce:expired")
        assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []
        again = post_report(client, auth, body)
        assert (again["duplicate"], again["delivery_id"]) == (True, sent["id"])
        events = ok(client.get("/v1/contacts/alice/timeline?limit=500", headers=auth))["items"]
        assert [e["reason"] for e in events if e["type"] == "delivery.bounced"] == ["soft_bounce"]
