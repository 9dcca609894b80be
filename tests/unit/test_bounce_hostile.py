"""Mail built to be slow to read: every one is parsed within a CPU-time budget, so nobody can
hold a worker (and, `re` keeping the GIL, every other thread in it) by mailing the bounce
address. The inputs are the reviewer's proofs of concept of issue 20 (a DSN without its
boundary, quoted headers with a huge address-like word) and the other shapes that made a
reader quadratic: HTML full of `<`, thousands of listed or quoted recipients, thousands of
parts.

CPU time, not wall time: a busy machine slows a test down without making it fail."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from hub.channels.email.reports import MAX_BYTES, NotAReport, Report, parse

# Generous: each of these took from 3 s to minutes before; linear reading takes well under 1 s.
BUDGET_SECONDS = 2.0
SIZE = 2 * 1024 * 1024  # each input is about this big


def _headers(content_type: str, sender: str = "MAILER-DAEMON@mx.example.net") -> str:
    return (
        f"From: {sender}\nTo: bounces@example.com\nSubject: Undelivered Mail Returned to Sender\n"
        f"MIME-Version: 1.0\nContent-Type: {content_type}\n\n"
    )


def loose_dsn_without_its_boundary() -> bytes:
    """The reviewer's e2e3.py (600 KB took 36 s): a multipart whose boundary never appears,
    its body lines that start like a DSN's and never reach an `Action:` line."""
    body = "Final-Recipient: x\n" * (SIZE // 4 // 19)
    part = f'--outer\nContent-Type: multipart/mixed; boundary="nope"\n\n{body}\n'
    return (
        'From: a@b.c\nTo: bounces@example.com\nContent-Type: multipart/mixed; boundary="outer"'
        f"\n\n{part * 4}--outer--\n"
    ).encode()


def arf_quoting_a_huge_to() -> bytes:
    """The reviewer's e2e2.py (44 KB took 3.4 s): an ARF report with no recipient field, so the
    quoted To is read; quoted headers in base64 with a To of one long word and no `@`."""
    quoted = f"Message-ID: <x@y.example>\nTo: {'a' * (SIZE * 3 // 4)}\n\n"
    encoded = base64.encodebytes(quoted.encode()).decode()
    return (
        _headers('multipart/report; report-type=feedback-report; boundary="b"', "abuse@isp.example")
        + "--b\nContent-Type: text/plain\n\nspam report\n"
        + "--b\nContent-Type: message/feedback-report\n\nFeedback-Type: abuse\nVersion: 1\n\n"
        + "--b\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n"
        + encoded
        + "\n--b--\n"
    ).encode()


def hotmail_report_with_a_huge_recipient() -> bytes:
    """Hotmail's complaint form, X-HmXmrOriginalRecipient a `<` never closed before a long
    word of `a@`s."""
    quoted = f"X-HmXmrOriginalRecipient: <{'a@' * (SIZE // 3)}\nMessage-ID: <x@y.example>\n\n"
    encoded = base64.encodebytes(quoted.encode()).decode()
    return (
        _headers('multipart/mixed; boundary="b"', "staff@hotmail.com")
        + "--b\nContent-Type: text/plain\n\njunk\n"
        + "--b\nContent-Type: text/rfc822-headers\nContent-Transfer-Encoding: base64\n\n"
        + encoded
        + "\n--b--\n"
    ).encode()


def address_like_words() -> bytes:
    """A non-standard bounce whose text is long words of `@`s and `<`s with nothing closing."""
    text = ("<" + "a@" * 5000 + " ") * (SIZE // 10_002)
    return (_headers("text/plain") + "Delivery failed: user unknown\n" + text).encode()


def html_of_open_brackets() -> bytes:
    """HTML the tag stripper reads: `<` after `<`, never a `>`."""
    return (_headers("text/html") + "<p>mailbox full</p>" + "<" * SIZE).encode()


def many_listed_recipients() -> bytes:
    """A non-standard bounce listing thousands of addresses, each with a refusal, each named
    again in the text: every address's words once searched for every other address."""
    lines = "".join(f"<user{i}@example.org>: 550 no reason\n" for i in range(SIZE // 80))
    lines += "".join(f"user{i}@example.org " for i in range(SIZE // 80))
    return (_headers("text/plain") + "This message could not be delivered.\n" + lines).encode()


def dsn_with_many_blocks() -> bytes:
    """A DSN of thousands of recipient blocks whose status says nothing specific, so each one
    looks for its words in a long human text that names every recipient."""
    count = SIZE // 160
    human = "".join(f"user{i}@example.org: could not deliver\n" for i in range(count))
    blocks = "".join(
        f"Final-Recipient: rfc822; user{i}@example.org\nAction: failed\nStatus: 5.0.0\n\n"
        for i in range(count)
    )
    return (
        _headers('multipart/report; report-type=delivery-status; boundary="b"')
        + f"--b\nContent-Type: text/plain\n\n{human}\n"
        + f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n{blocks}"
        + "--b--\n"
    ).encode()


def dsn_with_distinct_long_diagnostics() -> bytes:
    """Recipient blocks whose diagnostics say nothing, each different and long, so that no
    two are classified alike and each one's words are read."""
    filler = "x " * 20_000
    blocks = "".join(
        f"Final-Recipient: rfc822; user{i}@example.org\nAction: failed\nStatus: 5.0.0\n"
        f"Diagnostic-Code: smtp; 550 {i} {filler}\n\n"
        for i in range(SIZE // 40_100)
    )
    return (
        _headers('multipart/report; report-type=delivery-status; boundary="b"')
        + "--b\nContent-Type: text/plain\n\nnot delivered\n"
        + f"--b\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n{blocks}"
        + "--b--\n"
    ).encode()


def many_parts() -> bytes:
    """A flat multipart of tens of thousands of empty parts."""
    parts = "--b\n\nx\n" * (SIZE // 8)
    return (_headers('multipart/mixed; boundary="b"') + parts + "--b--\n").encode()


def a_thousand_parts_of_words() -> bytes:
    """Just under the count of parts refused unread, each a text part of 2 KB of words."""
    words = "the recipient could not be reached " * 60
    parts = f"--b\nContent-Type: text/plain\n\n{words}\n" * 990
    return (_headers('multipart/mixed; boundary="b"') + parts + "--b--\n").encode()


def short_lines() -> bytes:
    """A million short lines: flufl.bounce's detectors match dozens of patterns per line."""
    return (_headers("text/plain") + "Delivery failed\n" + "x\n" * (SIZE // 2)).encode()


def long_lines_of_commas() -> bytes:
    """Lines of `a,a,a,...`, on which one of flufl.bounce's detectors is quadratic."""
    line = "a," * 32_000 + "\n"
    return (_headers("text/plain") + "Delivery failed\n" + line * (SIZE // len(line))).encode()


def many_failed_recipients_header() -> bytes:
    """An X-Failed-Recipients header naming thousands of addresses, each named in the text."""
    names = ", ".join(f"user{i}@example.org" for i in range(SIZE // 60))
    text = " ".join(f"user{i}@example.org" for i in range(SIZE // 60))
    return (
        f"From: postmaster@mx.example.net\nTo: bounces@example.com\nSubject: failure\n"
        f"X-Failed-Recipients: {names}\nContent-Type: text/plain\n\n{text}\n"
    ).encode()


HOSTILE: dict[str, Callable[[], bytes]] = {
    "loose DSN without its boundary": loose_dsn_without_its_boundary,
    "ARF quoting a huge To": arf_quoting_a_huge_to,
    "Hotmail report with a huge recipient": hotmail_report_with_a_huge_recipient,
    "address-like words": address_like_words,
    "HTML of open brackets": html_of_open_brackets,
    "many listed recipients": many_listed_recipients,
    "DSN with many blocks": dsn_with_many_blocks,
    "DSN with distinct long diagnostics": dsn_with_distinct_long_diagnostics,
    "many parts": many_parts,
    "a thousand parts of words": a_thousand_parts_of_words,
    "short lines": short_lines,
    "long lines of commas": long_lines_of_commas,
    "many failed recipients in a header": many_failed_recipients_header,
}


def timed_parse(raw: bytes) -> tuple[float, Report | str]:
    """CPU seconds spent reading `raw`, and the report or why it was refused."""
    started = time.process_time()
    try:
        outcome: Report | str = parse(raw)
    except NotAReport as exc:
        outcome = str(exc)
    return time.process_time() - started, outcome


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_mail_is_read_within_the_budget(name: str) -> None:
    raw = HOSTILE[name]()
    assert SIZE // 2 < len(raw) <= MAX_BYTES, "the input is as big as it is meant to be"
    spent, outcome = timed_parse(raw)
    said = (
        outcome if isinstance(outcome, str) else f"{outcome.kind}, {len(outcome.verdicts)} verdicts"
    )
    print(f"\n{name}: {len(raw)} bytes in {spent:.3f} s CPU: {said}")
    assert spent < BUDGET_SECONDS, f"{name} took {spent:.1f} s of CPU"
    if isinstance(outcome, Report):
        assert outcome.verdicts, "a report always carries at least one verdict"
