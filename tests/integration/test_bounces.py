"""Bounces and complaints after the send: fixture DSN (RFC 3464) and ARF (RFC 5965) reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.app import create_app
from hub.channels.email.reports import Report
from hub.runtime import Runtime
from hub.services import apikeys, bounces
from hub.services.errors import InvalidField
from hub.settings import Settings
from hub.workers.service import Workers
from tests import bounce_mail
from tests.conftest import TEST_SECRET
from tests.dispatching import mail_one, ok, settled, timeline

ARF = """From: abuse@isp.example
To: news@example.com
Subject: FW: Hello
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain; charset=us-ascii

This is an e-mail abuse report for a message received from news@example.com.

--ARF
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: {rcpt}

--ARF
Content-Type: message/rfc822

From: News <news@example.com>
To: {rcpt}
Subject: Hello
Message-ID: {message_id}

Hello
--ARF--
"""
CONTENT = {"": {"email_subject": "Hello", "email_text": "Hello"}}


@pytest.fixture
def workers(runtime: Runtime) -> Iterator[Workers]:
    running = Workers(runtime)
    running.start(sweep=False)
    yield running
    running.stop()


def mailed(client: TestClient, auth: dict[str, str], external_id: str, email: str) -> str:
    """Send one e-mail to a new contact; the Message-ID Hub gave it."""
    notification_id, delivery = mail_one(client, auth, external_id, email, content=CONTENT)
    runtime: Runtime = client.app.state.runtime  # type: ignore[attr-defined]
    return f"<{runtime.message_keys.key(notification_id, delivery['id'], email)}@example.com>"


def report(client: TestClient, auth: dict[str, str], raw: str) -> Any:
    return client.post(
        "/inbound/email/bounce",
        content=raw.replace("\n", "\r\n").encode(),
        headers=auth | {"content-type": "message/rfc822"},
    )


def dsn(rcpt: str, message_id: str, *, hard: bool) -> str:
    """A hard bounce (5.1.1), or a soft one that is final: a relay gave up after retrying
    (`Action: failed` with 4.4.7), which every reader of Hub's calls soft."""
    if hard:
        return bounce_mail.dsn(rcpt, message_id)
    return bounce_mail.dsn(
        rcpt, message_id, status="4.4.7", code="451", why="delivery time expired"
    )


def test_a_hard_bounce_suppresses_the_address_before_the_next_send(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    message_id = mailed(client, auth, "gone", "gone@example.com")
    answer = report(client, auth, dsn("gone@example.com", message_id, hard=True))
    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "hard_bounce"
    assert answer.json()["suppressed"] is True
    events = timeline(client, auth, "gone")
    bounced = next(e for e in events if e["type"] == "delivery.bounced")
    assert bounced["reason"] == "hard_bounce"
    assert bounced["changes"]["status"] == "5.1.1"

    again = ok(
        client.post(
            "/v1/notifications",
            json={"topic": "news", "content": CONTENT, "recipients": ["gone"]},
            headers=auth,
        ),
        202,
    )
    (delivery,) = settled(client, auth, again["id"])["deliveries"]["items"]
    assert delivery["state"] == "suppressed"
    assert delivery["reason"] == "suppressed:hard_bounce"


def test_a_bounce_quoting_nothing_is_matched_by_its_verp_address(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    """Some systems send back only the status, no headers of the original: the address the
    report was sent to (the envelope sender, bounces+hub-N-D@...) names the delivery."""
    message_id = mailed(client, auth, "gone", "gone@example.com")
    key = message_id.strip("<>").partition("@")[0]
    bare = dsn("gone@example.com", message_id, hard=True)
    bare = bare[: bare.index("--B0UND\nContent-Type: text/rfc822-headers")] + "--B0UND--\n"
    bare = bare.replace("To: news@example.com", f"To: bounces+{key}@example.com", 1)
    assert "Message-ID" not in bare
    answer = report(client, auth, bare)
    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "hard_bounce"
    (row,) = ok(client.get("/v1/suppressions", params={"channel": "email"}, headers=auth))["items"]
    assert (row["address"], row["reason"]) == ("gone@example.com", "hard_bounce")
    _, _, d, tag = key.split("-")
    wrong = bare.replace(f"+{key}@", f"+hub-999-{d}-{tag}@")
    unmatched = ok(report(client, auth, wrong), 202)  # the right delivery, wrong notification
    assert (unmatched["matched"], unmatched["delivery_id"]) == (False, None)
    nothing = bare.replace(f"bounces+{key}@", "bounces@")
    unmatched = ok(report(client, auth, nothing), 202)
    assert (unmatched["matched"], unmatched["unmatched_id"]) == (False, None)
    assert "VERP" in unmatched["why"]


def test_a_relay_giving_up_fails_the_delivery_and_a_copy_of_its_report_counts_once(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    """4.x.x with `Action: failed` is a final failure (it stayed `sent` for ever before),
    counted as a soft bounce; the same report again changes nothing and is said to be a
    duplicate (the week's count of soft bounces is in test_bounce_kinds.py)."""
    message_id = mailed(client, auth, "slow", "slow@example.com")
    first = ok(report(client, auth, dsn("slow@example.com", message_id, hard=False)), 202)
    assert (first["kind"], first["matched"], first["duplicate"]) == ("soft_bounce", True, False)
    assert first["suppressed"] is False
    (delivery,) = ok(client.get("/v1/notifications/1", headers=auth))["deliveries"]["items"]
    assert (delivery["state"], delivery["reason"]) == ("failed", "soft_bounce:expired")
    for _ in range(2):
        again = ok(report(client, auth, dsn("slow@example.com", message_id, hard=False)), 202)
        assert (again["duplicate"], again["delivery_id"]) == (True, first["delivery_id"])
        assert again["suppressed"] is False
    bounced = [e for e in timeline(client, auth, "slow") if e["type"] == "delivery.bounced"]
    assert len(bounced) == 1
    assert bounced[0]["reason"] == "soft_bounce"
    assert bounced[0]["changes"]["status"] == "4.4.7"
    assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []


def test_a_spam_block_fails_the_delivery_and_suppresses_nobody(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    """5.7.1 is about the message or the sender, not the person (needs the readers of issue
    20, which call it `blocked`)."""
    message_id = mailed(client, auth, "picky", "picky@example.com")
    raw = bounce_mail.dsn("picky@example.com", message_id, status="5.7.1", why="spam")
    answer = ok(report(client, auth, raw), 202)
    assert (answer["kind"], answer["matched"], answer["suppressed"]) == ("blocked", True, False)
    (delivery,) = ok(client.get("/v1/notifications/1", headers=auth))["deliveries"]["items"]
    assert (delivery["state"], delivery["reason"]) == ("failed", "blocked")
    assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []
    (bounced,) = [e for e in timeline(client, auth, "picky") if e["type"] == "delivery.bounced"]
    assert (bounced["reason"], bounced["changes"]["status"]) == ("blocked", "5.7.1")


def test_a_delay_notice_is_answered_as_not_a_bounce_and_changes_nothing(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    message_id = mailed(client, auth, "later", "later@example.com")
    raw = bounce_mail.dsn(
        "later@example.com",
        message_id,
        action="delayed",
        status="4.4.1",
        code="451",
        why="try later",
    )
    answer = ok(report(client, auth, raw), 202)
    assert (answer["kind"], answer["matched"], answer["delivery_id"]) == ("not_bounce", False, None)
    assert answer["why"].startswith("a delay notice")
    (delivery,) = ok(client.get("/v1/notifications/1", headers=auth))["deliveries"]["items"]
    assert delivery["state"] == "sent"
    assert [e for e in timeline(client, auth, "later") if e["type"] == "delivery.bounced"] == []
    assert ok(client.get("/v1/bounces/unmatched", headers=auth))["items"] == []


def test_a_complaint_suppresses_the_address(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    message_id = mailed(client, auth, "angry", "angry@example.com")
    answer = report(client, auth, ARF.format(rcpt="angry@example.com", message_id=message_id))
    assert answer.status_code == 202, answer.text
    assert answer.json()["kind"] == "complaint"
    (row,) = ok(client.get("/v1/suppressions", params={"channel": "email"}, headers=auth))["items"]
    assert row["reason"] == "complaint"


def test_what_is_not_a_report_is_422_naming_the_message(
    client: TestClient, auth: dict[str, str]
) -> None:
    answer = report(client, auth, "Subject: not a report\n\nhello")
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "message"


@pytest.mark.parametrize("message_id", ["<hub-1-999999@example.com>", "<hub-1-1@example.com>"])
def test_a_report_with_a_key_but_no_delivery_of_ours_is_kept_and_changes_nothing(
    client: TestClient, auth: dict[str, str], workers: Workers, message_id: str
) -> None:
    mailed(client, auth, "ann", "ann@example.com")  # delivery 1 of notification 1 exists
    answer = ok(report(client, auth, dsn("x@example.com", message_id, hard=True)), 202)
    assert answer["matched"] is False
    assert answer["suppressed"] is False
    kept = ok(client.get("/v1/bounces/unmatched", headers=auth))["items"]
    assert [k["id"] for k in kept] == [answer["unmatched_id"]]
    assert kept[0]["message_id"] == message_id
    assert kept[0]["recipients"] == "x@example.com"
    assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []


def test_a_key_with_an_id_no_database_can_hold_is_no_key(
    client: TestClient, auth: dict[str, str]
) -> None:
    """Nineteen digits fit the key's pattern but not a BIGINT: an overflow was a 500."""
    huge = "<hub-1-9999999999999999999-abcdefghijklmnop@example.com>"
    answer = ok(report(client, auth, dsn("x@example.com", huge, hard=True)), 202)
    assert (answer["matched"], answer["why"], answer["unmatched_id"]) == (
        False,
        bounces.NO_KEY,
        None,
    )


def test_a_report_with_no_key_of_hubs_is_answered_and_not_kept(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    """Anyone can mail the bounce address: a report that quotes nothing of Hub's is junk as
    far as Hub can tell, and keeping each filled the unmatched list without limit."""
    mailed(client, auth, "ann", "ann@example.com")
    for n in range(3):
        raw = dsn("ann@example.com", f"<someone-elses-{n}@example.com>", hard=True)
        answer = ok(report(client, auth, raw), 202)
        assert (answer["matched"], answer["suppressed"], answer["unmatched_id"]) == (
            False,
            False,
            None,
        )
        assert answer["kind"] == "hard_bounce"
        assert answer["why"] == bounces.NO_KEY
    assert ok(client.get("/v1/bounces/unmatched", headers=auth))["items"] == []
    assert ok(client.get("/v1/suppressions", headers=auth))["items"] == []


@pytest.mark.parametrize(
    "database",
    [
        "sqlite",  # a path where no database file can be opened
        "postgresql",  # nothing listens on port 9 of loopback: every connection is refused
    ],
)
def test_a_database_that_is_down_is_503_with_retry_after(database: str, tmp_path: Path) -> None:
    """Not 500: the mail system (or the inbound listener) keeps the report and retries. The
    API key's lookup is the first thing to fail here; the same guard covers the recording (see
    the ESP feedback tests, whose routes take no key)."""
    url = {
        "sqlite": f"sqlite:///{tmp_path}",  # a directory
        "postgresql": "postgresql+psycopg://postgres@127.0.0.1:9/hub?connect_timeout=2",
    }[database]
    runtime = Runtime.build(Settings(database_url=url, secret_key=TEST_SECRET))
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            key = {"Authorization": f"Bearer {apikeys.PREFIX}{'x' * 40}"}
            raw = dsn("x@example.com", "<hub-1-1@example.com>", hard=True)
            answers = [
                report(client, key, raw),
                client.get("/v1/bounces/unmatched", headers=key),
            ]
    finally:
        runtime.close()
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "30"
        assert "database is unavailable" in answer.json()["error"]["message"]


def test_reports_need_a_key(client: TestClient) -> None:
    assert client.post("/inbound/email/bounce", content=b"x").status_code == 401


@given(st.binary(max_size=2000) | st.text(max_size=2000).map(str.encode))
@settings(max_examples=300, deadline=None)
def test_any_bytes_parse_to_a_report_or_a_422(raw: bytes) -> None:
    prefix = b"Content-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n"
    for candidate in (raw, prefix + raw):
        outcome = _parsed(candidate)
        assert outcome == "message" or isinstance(outcome, Report)


def _parsed(raw: bytes) -> Report | str:
    """The report, or the field a 422 would name; any other exception fails the test."""
    try:
        return bounces.parse(raw)
    except InvalidField as exc:
        return exc.field
