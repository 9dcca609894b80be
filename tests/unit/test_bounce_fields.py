"""The pieces of report reading that issue 20's review changed: addresses found within
RFC 5321's limits and never as the tail of a longer word, a DSN found in a body whose
boundary is wrong only when an Action line follows its Final-Recipient, ARF's repeated
Original-Rcpt-To, old sendmail's listed failures, and verdicts in the bounce's order."""

from __future__ import annotations

import pytest

from hub.channels.email.bounce_class import NOT_COMPLAINTS
from hub.channels.email.report_fields import MAX_RECIPIENTS, address_in, first_address
from hub.channels.email.reports import Kind, NotAReport, parse


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("rfc822; Alice@Example.org", "alice@example.org"),
        ("Ann <ann@example.org>, bob@example.org", "ann@example.org"),
        ('"x" <a@b@example.org>', "a@b@example.org"),
        ("mailto:ann@example.org.", "ann@example.org"),
        (f"{'a' * 64}@example.org", f"{'a' * 64}@example.org"),
        # Past RFC 5321's 64 octets: no address, not its last 64 characters.
        (f"{'a' * 65}@example.org", None),
        (f"<{'a' * 65}@example.org>", None),
        (f"ann@{'d' * 252}.org", None),  # 255 after the @ at most
        ("a" * 10_000, None),
        ("<" + "a@" * 5_000, None),  # a word of 10,000 characters is no address
    ],
)
def test_first_address(text: str, address: str | None) -> None:
    assert first_address(text) == address


def test_a_utf8_address_in_a_global_dsn_field() -> None:
    assert address_in("utf-8; j\\x{FC}rgen@example.de") == "jürgen@example.de"


LOOSE = """\
From: MAILER-DAEMON@mx.example.net
To: bounces@example.com
Content-Type: multipart/mixed; boundary="outer"

--outer
Content-Type: multipart/mixed; boundary="never-used"

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gone@example.org
{between}Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 user unknown
--outer--
"""


def test_a_dsn_whose_boundary_is_wrong_is_read_when_an_action_follows() -> None:
    report = parse(LOOSE.format(between="X-Note: a line between\nAction: failed\n").encode())
    assert (report.source, report.recipients, report.kind) == (
        "dsn",
        ("gone@example.org",),
        Kind.HARD_BOUNCE,
    )


def test_without_an_action_after_it_a_final_recipient_is_no_dsn() -> None:
    raw = LOOSE.format(between="").replace("MAILER-DAEMON", "someone").encode()
    with pytest.raises(NotAReport):
        parse(raw)


ARF = """\
From: abuse@isp.example
To: postmaster@example.com
Content-Type: multipart/report; report-type=feedback-report; boundary="b"

--b
Content-Type: text/plain

A complaint.
--b
Content-Type: message/feedback-report

Feedback-Type: {feedback}
Version: 1
{recipients}
--b--
"""


def test_an_arf_report_names_each_original_rcpt_to() -> None:
    recipients = "".join(f"Original-Rcpt-To: <p{i}@example.org>\n" for i in range(3))
    report = parse(ARF.format(feedback="abuse", recipients=recipients).encode())
    assert report.recipients == ("p0@example.org", "p1@example.org", "p2@example.org")
    assert {v.kind for v in report.verdicts} == {Kind.COMPLAINT}


def test_an_arf_report_names_at_most_max_recipients() -> None:
    recipients = "".join(f"Original-Rcpt-To: p{i}@example.org\n" for i in range(500))
    report = parse(ARF.format(feedback="abuse", recipients=recipients).encode())
    assert len(report.recipients) == MAX_RECIPIENTS


@pytest.mark.parametrize("feedback", sorted(NOT_COMPLAINTS))
def test_feedback_that_is_no_complaint(feedback: str) -> None:
    report = parse(
        ARF.format(feedback=feedback, recipients="Original-Rcpt-To: a@b.example\n").encode()
    )
    assert report.kind is Kind.NOT_BOUNCE


SENDMAIL_V5 = """\
From: Mail Delivery Subsystem <MAILER-DAEMON@mx.example.com>
To: bounces@example.com
Subject: Returned mail: User unknown

   ----- Transcript of session follows -----
550 example.org (smtp)... 550 Host unknown
554 <kuroneko@example.org>... 550 Host unknown (Authoritative answer from name server)
While talking to mail.example.net:
>>> RCPT To:<mikeneko@example.net>
<<< 550 Requested User Mailbox not found. No such user here.
550 <mikeneko@example.net>... User unknown

   ----- Unsent message follows -----
To: kuroneko@example.org
Subject: Hello
"""


def test_old_sendmail_lists_each_failure_in_the_order_it_names_them() -> None:
    report = parse(SENDMAIL_V5.encode())
    assert [(v.address, v.kind) for v in report.verdicts] == [
        ("kuroneko@example.org", Kind.HARD_BOUNCE),
        ("mikeneko@example.net", Kind.HARD_BOUNCE),
    ]
