"""Mail that comes back, read without a socket: delivery-status notifications (RFC 3464 and
6533), abuse reports (ARF, RFC 5965), non-standard bounces and auto-replies into a Report with
one verdict per recipient, and anything else refused."""

from __future__ import annotations

import pytest

from hub.channels.email.reports import (
    MAX_BYTES,
    MAX_MIME_DEPTH,
    MAX_PARTS,
    Kind,
    NotAReport,
    Report,
    Verdict,
    parse,
)

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


GONE = Verdict(
    "gone@example.org",
    Kind.HARD_BOUNCE,
    "5.1.1",
    "smtp; 550 5.1.1 <gone@example.org>: User unknown",
    "failed",
)


def test_a_hard_bounce() -> None:
    report = parse(raw(DSN.format(blocks=FAILED)))
    assert report == Report(
        message_id="<hub-12-345-abcdefghijklmnop@example.com>",
        returned_to=(
            "Hub Bounces <bounces+hub-12-345-abcdefghijklmnop@example.com>",
            "bounces@example.com",
        ),
        verdicts=(GONE,),
        source="dsn",
    )
    assert (report.kind, report.status, report.recipients) == (
        Kind.HARD_BOUNCE,
        "5.1.1",
        ("gone@example.org",),
    )


def test_a_delay_is_no_bounce() -> None:
    report = parse(raw(DSN.format(blocks=DELAYED)))
    assert report.verdicts == (
        Verdict(
            "full@example.org",
            Kind.NOT_BOUNCE,
            "4.2.2",
            "smtp; 452 4.2.2 Mailbox full",
            "delayed",
        ),
    )


@pytest.mark.parametrize("trailer", ["", "\n", "\n\n\n", "\n \n", "\n\t\n\n"])
def test_every_recipient_block_is_read_and_a_blank_last_block_changes_nothing(
    trailer: str,
) -> None:
    """Exchange, Office 365, Gmail and SES end the delivery-status part with a blank block;
    reading only the last block made their user-unknowns soft (the bug of issue 20)."""
    report = parse(raw(DSN.format(blocks=DELAYED + "\n" + FAILED + trailer)))
    assert [(v.address, v.kind) for v in report.verdicts] == [
        ("full@example.org", Kind.NOT_BOUNCE),
        ("gone@example.org", Kind.HARD_BOUNCE),
    ]
    assert report.about("gone@example.org") == GONE
    assert report.about("full@example.org").kind is Kind.NOT_BOUNCE
    assert report.headline == GONE
    flipped = parse(raw(DSN.format(blocks=FAILED + "\n" + DELAYED + trailer)))
    assert flipped.verdicts == tuple(reversed(report.verdicts))
    assert flipped.kind is Kind.HARD_BOUNCE


def test_a_relay_giving_up_on_a_4xx_is_a_soft_failure() -> None:
    blocks = FAILED.replace("Status: 5.1.1", "Status: 4.4.7").replace(
        "550 5.1.1 <gone@example.org>: User unknown", "421 4.4.7 Delivery time expired"
    )
    verdict = parse(raw(DSN.format(blocks=blocks))).headline
    assert (verdict.kind, verdict.status, verdict.action) == (Kind.SOFT_BOUNCE, "4.4.7", "failed")


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("multipart/report; REPORT-TYPE=DELIVERY-STATUS; boundary=B0UND", Kind.HARD_BOUNCE),
        ("multipart/report; boundary=B0UND", Kind.HARD_BOUNCE),
        ("Multipart/Mixed; boundary=B0UND", Kind.HARD_BOUNCE),
    ],
)
def test_a_dsn_is_known_by_its_parts_whatever_its_report_type(
    content_type: str, kind: Kind
) -> None:
    text = DSN.format(blocks=FAILED).replace(
        'multipart/report; report-type=delivery-status; boundary="B0UND"', content_type
    )
    assert parse(raw(text)).about("gone@example.org").kind is kind


@pytest.mark.parametrize(
    ("status", "diagnostic", "expected"),
    [
        ("", "smtp; 550 5.1.1 <gone@example.org>: User unknown", "5.1.1"),
        ("", "smtp; 552 Mailbox over quota", "5.2.2"),
        ("", "smtp; 550 Requested action not taken", "5.0.0"),
        ("5.2.2 (mailbox full)", "smtp; 552 Over quota", "5.2.2"),
    ],
)
def test_the_status_falls_back_to_the_diagnostic(
    status: str, diagnostic: str, expected: str
) -> None:
    block = "Final-Recipient: rfc822; gone@example.org\nAction: failed\n"
    block += f"Status: {status}\n" if status else ""
    block += f"Diagnostic-Code: {diagnostic}\n"
    assert parse(raw(DSN.format(blocks=block))).headline.status == expected


def test_the_original_recipient_is_the_address_hub_sent_to() -> None:
    """Forwarded or aliased mail fails at another address; Hub sent to the original one
    (written in xtext: `+2B` is a plus sign)."""
    block = (
        "Original-Recipient: rfc822;alice+2Bnews@example.org\n"
        "Final-Recipient: rfc822; alice.forwarded@elsewhere.example\n"
        "Action: failed\nStatus: 5.1.1\n"
    )
    assert parse(raw(DSN.format(blocks=block))).recipients == ("alice+news@example.org",)


GLOBAL_DSN = """\
From: MAILER-DAEMON@mx.example.de
To: bounces+hub-3-4-abcdefghijklmnop@example.com
MIME-Version: 1.0
Content-Type: multipart/report; report-type=global-delivery-status; boundary="G"

--G
Content-Type: text/plain; charset=utf-8

Unzustellbar.

--G
Content-Type: message/global-delivery-status

Reporting-MTA: dns; mx.example.de

Original-Recipient: utf-8; j\\x{FC}rgen@b\\x{FC}cher.example
Final-Recipient: utf-8; jürgen@bücher.example
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 Postfach voll

--G
Content-Type: message/global-headers

From: news@example.com
Message-ID: <hub-3-4-abcdefghijklmnop@example.com>

--G--
"""


def test_a_global_dsn_names_utf8_addresses() -> None:
    report = parse(GLOBAL_DSN.replace("\n", "\r\n").encode())
    assert report.message_id == "<hub-3-4-abcdefghijklmnop@example.com>"
    assert report.verdicts == (
        Verdict(
            "jürgen@bücher.example",
            Kind.SOFT_BOUNCE,
            "5.2.2",
            "smtp; 552 5.2.2 Postfach voll",
            "failed",
        ),
    )


def test_a_dsn_quoting_nothing_still_says_where_it_was_sent() -> None:
    bare = DSN.format(blocks=FAILED)
    bare = bare[: bare.index("--B0UND\nContent-Type: text/rfc822-headers")] + "--B0UND--\n"
    report = parse(raw(bare))
    assert report.message_id is None
    assert report.returned_to[0].endswith("<bounces+hub-12-345-abcdefghijklmnop@example.com>")


def test_an_abuse_report_is_a_complaint() -> None:
    report = parse(raw(ARF))
    assert report == Report(
        message_id="<hub-7-8-abcdefghijklmnop@example.com>",
        returned_to=("news@example.com",),
        verdicts=(Verdict("angry@example.org", Kind.COMPLAINT, None, "abuse"),),
        source="arf",
    )


def test_an_abuse_report_in_multipart_mixed_without_report_type_is_a_complaint() -> None:
    text = ARF.replace("multipart/report; report-type=feedback-report", "multipart/mixed")
    assert parse(raw(text)).about("angry@example.org").kind is Kind.COMPLAINT


def test_not_spam_feedback_is_no_complaint() -> None:
    """`not-spam` means the person took the mail OUT of their spam folder."""
    report = parse(raw(ARF.replace("Feedback-Type: Abuse", "Feedback-Type: not-spam")))
    assert report.verdicts == (Verdict("angry@example.org", Kind.NOT_BOUNCE, None, "not-spam"),)


HOTMAIL = """\
From: staff@hotmail.com
Subject: complaint about message from 192.0.2.1
To: fbl@example.com
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="H"

--H
Content-Type: message/rfc822
Content-Disposition: inline

X-HmXmrOriginalRecipient: Angry@Outlook.example
From: News <news@example.com>
To: angry@outlook.example
Message-ID: <hub-9-9-abcdefghijklmnop@example.com>

Hello
--H--
"""


def test_a_hotmail_junk_report_is_a_complaint() -> None:
    report = parse(raw(HOTMAIL))
    assert (report.source, report.message_id) == ("arf", "<hub-9-9-abcdefghijklmnop@example.com>")
    assert report.verdicts == (Verdict("angry@outlook.example", Kind.COMPLAINT, None, "abuse"),)


QMAIL = """\
From: MAILER-DAEMON@mx.example.net
To: bounces+hub-5-6-abcdefghijklmnop@example.com
Subject: failure notice

Hi. This is the qmail-send program at mx.example.net.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<nobody@example.org>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

Return-Path: <bounces+hub-5-6-abcdefghijklmnop@example.com>
From: News <news@example.com>
To: nobody@example.org
Message-ID: <hub-5-6-abcdefghijklmnop@example.com>
Subject: policy update

Our spam policy changed.
"""


def test_a_qmail_bounce_is_read_by_the_detectors() -> None:
    """The words of the quoted original (spam, policy) do not make it a refusal."""
    report = parse(raw(QMAIL))
    assert report.source == "detector"
    assert report.message_id == "<hub-5-6-abcdefghijklmnop@example.com>"
    verdict = report.about("nobody@example.org")
    assert (verdict.address, verdict.kind, verdict.status) == (
        "nobody@example.org",
        Kind.HARD_BOUNCE,
        "5.1.1",
    )


def test_a_bounce_naming_nobody_is_found_by_the_address_it_came_back_to() -> None:
    text = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+hub-5-6-abcdefghijklmnop@example.com
Subject: Undeliverable message

Your message could not be delivered: the mailbox is full (quota exceeded).
"""
    report = parse(raw(text))
    assert report.verdicts[0].address is None
    assert report.kind is Kind.SOFT_BOUNCE
    assert report.returned_to == ("bounces+hub-5-6-abcdefghijklmnop@example.com",)


@pytest.mark.parametrize(
    "headers",
    [
        "Auto-Submitted: auto-replied\nSubject: Re: News",
        "X-Autoreply: yes\nSubject: Re: News",
        "Precedence: auto_reply\nSubject: Re: News",
        "Subject: Out of Office: News",
        "Subject: Automatic reply: News",
    ],
)
def test_an_auto_reply_is_answered_as_no_bounce(headers: str) -> None:
    to = "bounces+hub-1-2-abcdefghijklmnop@example.com"
    text = f"From: alice@example.org\nTo: {to}\n{headers}\n\nI am away until Monday.\n"
    report = parse(raw(text))
    assert (report.kind, report.source, report.recipients) == (Kind.NOT_BOUNCE, "auto-reply", ())


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Subject: hello\n\nnot a report\n", "not a bounce"),
        ("From: alice@example.org\nSubject: Re: News\n\nThanks, see you.\n", "not a bounce"),
        (
            "From: alice@example.org\nSubject: Read: News\nContent-Type: multipart/report;"
            " report-type=disposition-notification; boundary=M\n\n--M\nContent-Type:"
            " message/disposition-notification\n\nDisposition: manual-action/MDN-sent-manually;"
            " displayed\n\n--M--\n",
            "not a bounce",
        ),
    ],
)
def test_what_is_not_a_report_is_refused(text: str, why: str) -> None:
    with pytest.raises(NotAReport, match=why):
        parse(raw(text))
    assert issubclass(NotAReport, ValueError)


def test_a_report_too_big_to_read_is_refused() -> None:
    with pytest.raises(NotAReport, match="larger than"):
        parse(b"Subject: x\r\n\r\n" + b"a" * MAX_BYTES)


@pytest.mark.parametrize("depth", [MAX_MIME_DEPTH + 1, 2000])
def test_parts_nested_too_deeply_are_refused_not_crashed_on(depth: int) -> None:
    """Past the limit the depth check refuses it; far past it, the count of part delimiters
    refuses it before the parser (whose own recursion would give out) is given it."""
    head = "Content-Type: multipart/report; report-type=delivery-status; boundary=b0\n\n"
    nested = head + "".join(
        f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth)
    )
    with pytest.raises(NotAReport, match=r"nested|may start a MIME part"):
        parse(raw(nested))


def test_thousands_of_parts_are_refused_before_parsing_and_dashes_in_a_quote_are_not() -> None:
    parts = "".join("--b\nContent-Type: text/plain\n\nx\n" for _ in range(MAX_PARTS + 1))
    with pytest.raises(NotAReport, match=f"more than {MAX_PARTS} lines"):
        parse(raw(f'Content-Type: multipart/mixed; boundary="b"\n\n{parts}--b--\n'))
    quoted = "-----\n" * (MAX_PARTS // 2)
    dashes = DSN.format(blocks=FAILED).replace("--B0UND--", f"{quoted}--B0UND--")
    assert parse(raw(dashes)).about("gone@example.org").kind is Kind.HARD_BOUNCE
