"""A delivery-status notification (RFC 3464) as a mail system writes it, for the tests that
hand Hub a bounce: through the API, the inbound mail listener or a pipe."""

from __future__ import annotations

DSN = """From: MAILER-DAEMON@mx.example.net
To: {to}
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B0UND"

--B0UND
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.net. Your message could not be delivered.

--B0UND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Thu, 26 Nov 2026 03:00:00 +0000

Final-Recipient: rfc822; {rcpt}
Original-Recipient: rfc822;{rcpt}
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {code} {status} <{rcpt}>: {why}

--B0UND
Content-Type: text/rfc822-headers

From: News <news@example.com>
To: {rcpt}
Subject: Hello
Message-ID: {message_id}

--B0UND--
"""


def dsn(
    rcpt: str,
    message_id: str,
    *,
    to: str = "news@example.com",
    action: str = "failed",
    status: str = "5.1.1",
    code: str = "550",
    why: str = "User unknown",
) -> str:
    """The report on `rcpt` for the message `message_id`, sent back `to` (a VERP address, or
    the sender); by default a hard bounce. Lines end in LF: encode with CRLF to send."""
    return DSN.format(
        to=to, rcpt=rcpt, message_id=message_id, action=action, status=status, code=code, why=why
    )
