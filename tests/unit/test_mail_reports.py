"""Mail that comes back, read without a socket: delivery-status notifications (RFC 3464) and
abuse reports (ARF, RFC 5965) into a neutral Report, and anything else refused."""

from __future__ import annotations

import pytest

from hub.channels.email.reports import MAX_MIME_DEPTH, Kind, NotAReport, Report, parse

DSN = """\
From: MAILER-DAEMON@mx.example.net
To: Hub Bounces <bounces+hub-12-345-abcdefghijklmnop@example.com>
Delivered-To: bounces@example.com
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

Your message could not be delivered.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Thu, 26 Nov 2026 03:00:00 +0000

{blocks}
--B0UND
Content-Type: text/rfc822-headers

From: News <news@example.com>
To: gone@example.org
Message-ID: <hub-12-345-abcdefghijklmnop@example.com>

--B0UND--
"""
FAILED = """\
Final-Recipient: rfc822; Gone@Example.org
Original-Recipient: rfc822;gone@example.org
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.org>: User unknown
"""
DELAYED = """\
Final-Recipient: rfc822; full@example.org
Action: delayed
Status: 4.2.2
Diagnostic-Code: smtp; 452 4.2.2 Mailbox full
"""
ARF = """\
From: abuse@isp.example
To: news@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="ARF"

--ARF
Content-Type: text/plain; charset=us-ascii

This is an abuse report.

--ARF
Content-Type: message/feedback-report

Feedback-Type: Abuse
User-Agent: ISP-FBL/1.0
Version: 1
Original-Rcpt-To: <Angry@Example.org>

--ARF
Content-Type: message/rfc822

From: News <news@example.com>
To: angry@example.org
Message-ID: <hub-7-8-abcdefghijklmnop@example.com>

Hello
--ARF--
"""


def raw(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode()


def test_a_hard_bounce() -> None:
    report = parse(raw(DSN.format(blocks=FAILED)))
    assert report == Report(
        kind=Kind.HARD_BOUNCE,
        message_id="<hub-12-345-abcdefghijklmnop@example.com>",
        status="5.1.1",
        detail="smtp; 550 5.1.1 <gone@example.org>: User unknown",
        returned_to=(
            "Hub Bounces <bounces+hub-12-345-abcdefghijklmnop@example.com>",
            "bounces@example.com",
        ),
        recipients=("gone@example.org",),
    )


def test_a_delay_is_a_soft_bounce() -> None:
    report = parse(raw(DSN.format(blocks=DELAYED)))
    assert (report.kind, report.status) == (Kind.SOFT_BOUNCE, "4.2.2")
    assert report.recipients == ("full@example.org",)


def test_the_last_recipient_block_decides_and_a_blank_last_block_is_skipped() -> None:
    """Some servers end the delivery-status part with an empty block: it is no recipient."""
    blocks = DELAYED + "\n" + FAILED + "\n\n\n"
    report = parse(raw(DSN.format(blocks=blocks)))
    assert (report.kind, report.status) == (Kind.HARD_BOUNCE, "5.1.1")
    assert report.recipients == ("full@example.org", "gone@example.org")
    flipped = parse(raw(DSN.format(blocks=FAILED + "\n" + DELAYED + "\n \n")))
    assert (flipped.kind, flipped.status) == (Kind.SOFT_BOUNCE, "4.2.2")


def test_a_failure_without_a_5xx_status_is_soft() -> None:
    blocks = FAILED.replace("Status: 5.1.1", "Status: 4.4.7")
    assert parse(raw(DSN.format(blocks=blocks))).kind is Kind.SOFT_BOUNCE


def test_a_dsn_quoting_nothing_still_says_where_it_was_sent() -> None:
    bare = DSN.format(blocks=FAILED)
    bare = bare[: bare.index("--B0UND\nContent-Type: text/rfc822-headers")] + "--B0UND--\n"
    report = parse(raw(bare))
    assert report.message_id is None
    assert report.returned_to[0].endswith("<bounces+hub-12-345-abcdefghijklmnop@example.com>")


def test_an_abuse_report_is_a_complaint() -> None:
    report = parse(raw(ARF))
    assert report == Report(
        kind=Kind.COMPLAINT,
        message_id="<hub-7-8-abcdefghijklmnop@example.com>",
        status=None,
        detail="abuse",
        returned_to=("news@example.com",),
        recipients=("angry@example.org",),
    )


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Subject: hello\n\nnot a report\n", "expected multipart/report"),
        (
            DSN.format(blocks=FAILED).replace("report-type=delivery-status", "report-type=x"),
            "neither a DSN nor ARF",
        ),
    ],
)
def test_what_is_not_a_report_is_refused(text: str, why: str) -> None:
    with pytest.raises(NotAReport, match=why):
        parse(raw(text))
    assert issubclass(NotAReport, ValueError)


@pytest.mark.parametrize("depth", [MAX_MIME_DEPTH + 1, 2000])
def test_parts_nested_too_deeply_are_refused_not_crashed_on(depth: int) -> None:
    """Past the limit the depth check refuses it; far past it the parser's own recursion
    gives out first, and that is refused the same way."""
    head = "Content-Type: multipart/report; report-type=delivery-status; boundary=b0\n\n"
    nested = head + "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth)
    )
    with pytest.raises(NotAReport, match="nested"):
        parse(raw(nested))
