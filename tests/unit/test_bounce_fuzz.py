"""Whatever arrives at the bounce address, parsing ends in a Report or NotAReport, never in
another exception (which would be a 500 for the sender)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
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


def _check(raw: bytes) -> None:
    try:
        report = parse(raw)
    except NotAReport:
        return
    assert isinstance(report, Report)
    assert report.verdicts, "a report always carries at least one verdict"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_are_a_report_or_not_a_report(raw: bytes) -> None:
    _check(raw)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES) | st.binary(max_size=40), max_size=60))
def test_report_shaped_garbage_is_a_report_or_not_a_report(pieces: list[bytes]) -> None:
    _check(b"".join(pieces))
