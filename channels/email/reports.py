"""Mail that comes back, read: delivery-status notifications (RFC 3464 and RFC 6533's global
ones), abuse reports (ARF, RFC 5965, and Hotmail's), the non-standard bounces of qmail, Exim,
Yahoo and others (through flufl.bounce's detectors), and auto-replies, which are no bounce.

`parse` says what a report is, per recipient, and what it quotes; deciding which delivery it is
about, if any, is the business of `hub.services.bounces`. The readers live beside this module
(`report_dsn`, `bounce_detect`), the classification in `bounce_class`.
"""

from __future__ import annotations

import email
import email.policy

from hub.channels.email.bounce_detect import read_other
from hub.channels.email.report_dsn import read_standard
from hub.channels.email.report_fields import MAX_MIME_DEPTH, RETURN_HEADERS, walk
from hub.channels.email.report_types import Kind, NotAReport, Report, Verdict

__all__ = [
    "MAX_BYTES",
    "MAX_MIME_DEPTH",
    "MAX_PARTS",
    "RETURN_HEADERS",
    "Kind",
    "NotAReport",
    "Report",
    "Verdict",
    "parse",
]

# The largest report read. Bounces quoting a whole original with attachments reach a few MB;
# past this it is not worth the parse.
MAX_BYTES = 20 * 1024 * 1024
# Lines that may start a MIME part (`--boundary`), counted before parsing: the email package
# takes about 15 microseconds a part, so a megabyte of empty parts held a worker for seconds
# before any limit of ours was reached. Real reports have a handful (the corpus at most 14).
MAX_PARTS = 1000


def parse(raw: bytes) -> Report:
    """Raises NotAReport for anything that is no bounce, complaint or auto-reply, and for what
    cannot be read safely (too big, nested too deeply, not a message at all)."""
    if len(raw) > MAX_BYTES:
        raise NotAReport(f"larger than {MAX_BYTES} bytes")
    if raw.count(b"\n--") > MAX_PARTS:
        raise NotAReport(f"more than {MAX_PARTS} lines that may start a MIME part")
    try:
        message = email.message_from_bytes(raw, policy=email.policy.compat32)
        _check_depth(message)
        report = read_standard(message) or read_other(raw, message)
    except RecursionError:  # the parser recurses once per level of multipart
        raise NotAReport("MIME parts nested too deeply to read") from None
    except NotAReport:
        raise
    except Exception as exc:
        # The email package and the detectors meet hostile bytes here; whatever they trip
        # on, the sender gets a 4xx saying the message could not be read, never a 500.
        raise NotAReport(f"unreadable message ({type(exc).__name__})") from exc
    if report is None:
        raise NotAReport("not a bounce, a complaint or an auto-reply")
    return report


def _check_depth(message: email.message.Message) -> None:
    """Real reports nest two or three levels; deeper ones are refused before reading."""
    for _, depth in walk(message):
        if depth > MAX_MIME_DEPTH:
            raise NotAReport(f"MIME parts nested deeper than {MAX_MIME_DEPTH}")
