"""Whatever arrives at the bounce address, parsing ends in a Report or NotAReport, never in
another exception (which would be a 500 for the sender), and soon: each example has a
deadline, and long runs of the characters that made a pattern backtrack are generated too
(test_bounce_hostile.py holds the worst shapes found to a CPU budget)."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.email.reports import NotAReport, Report, parse

PIECES = [
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n",
    b"Content-Type: multipart/mixed; boundary=B\r\n",
    b"Content-Type: message/delivery-status\r\n",
    b"Content-Type: message/global-delivery-status\r\n",
    b"Content-Type: message/feedback-report\r\n",
    b"Content-Type: message/rfc822\r\n",
    b"Content-Type: text/rfc822-headers\r\n",
    b"Content-Transfer-Encoding: base64\r\n",
    b"Content-Transfer-Encoding: quoted-printable\r\n",
    b"Content-Type: text/plain; charset=x-unknown\r\n",
    b"From: MAILER-DAEMON@example.net\r\n",
    b"Subject: Undelivered Mail\r\n",
    b"Auto-Submitted: auto-replied\r\n",
    b"X-Failed-Recipients: a@example.org, \xff@\r\n",
    b"Final-Recipient: utf-8; j\\x{FFFFFFFF}@example.org\r\n",
    b"Original-Recipient: rfc822;a+ZZ@example.org\r\n",
    b"Action: failed\r\n",
    b"Status: 5.1.1\r\n",
    b"Diagnostic-Code: smtp; 550 5.1.1 user unknown\r\n",
    b"Feedback-Type: abuse\r\n",
    b"Message-ID: <x@y>\r\n",
    b"\r\n",
    b"--B\r\n",
    b"--B--\r\n",
    b"=?utf-8?b?////?=\r\n",
    b"\x00\xff\xfe",
]
# Characters the readers' patterns stop or turn at, repeated thousands of times each.
RUNS = [
    b"Final-Recipient: x\n",
    b"a",
    b"a@",
    b"<",
    b"<a@",
    b"@",
    b"[",
    b"a,",
    b" ",
    b"\n",
    b"-",
    b".",
    b"5.1.1",
    b'"',
]
RUN_PIECES = [
    b"Content-Type: multipart/mixed; boundary=nope\r\n\r\n",
    b"Content-Type: text/html\r\n\r\n",
    b"From: MAILER-DAEMON@example.net\r\nSubject: Undelivered Mail\r\n\r\n",
    b"Final-Recipient: x\n",
    b"To: ",
    b"X-HmXmrOriginalRecipient: ",
]


def _check(raw: bytes) -> None:
    try:
        report = parse(raw)
    except NotAReport:
        return
    assert isinstance(report, Report)
    assert report.verdicts, "a report always carries at least one verdict"


# A 4 KB message is read in milliseconds; a second is slack for a busy machine, not for a
# pattern gone quadratic.
@settings(max_examples=300, deadline=timedelta(seconds=1))
@given(st.binary(max_size=4096))
def test_random_bytes_are_a_report_or_not_a_report(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=400, deadline=timedelta(seconds=1))
@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=40), max_size=60))
def test_report_shaped_garbage_is_a_report_or_not_a_report(pieces: list[bytes]) -> None:
    _check(b"".join(pieces))


_RUN = st.tuples(st.sampled_from(RUNS), st.integers(min_value=1, max_value=20_000))


# Up to a few hundred KB: the quadratic patterns of issue 20 took tens of seconds on these.
@settings(max_examples=60, deadline=timedelta(seconds=2))
@given(st.lists(st.sampled_from(RUN_PIECES) | _RUN.map(lambda run: run[0] * run[1]), max_size=12))
def test_long_runs_are_read_soon(pieces: list[bytes]) -> None:
    _check(b"From: a@b.example\r\n" + b"".join(pieces))
