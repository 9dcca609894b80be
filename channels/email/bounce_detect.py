"""Bounces that are not DSNs (qmail, Exim, Yahoo, old Gmail, Google Groups, OpenSMTPD, Postfix
without DSN, ...) and replies that are no bounce at all (vacation messages).

flufl.bounce's detectors say WHO failed, for good or for now; the reason is read from the
bounce's own words near each address, with the same classifier as DSNs. A bounce that plainly
is one but names nobody still counts: Hub finds its delivery by the VERP address it came back
to, and the verdict's address is None.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from email.header import decode_header, make_header
from email.message import Message

from flufl.bounce import all_failures

from hub.channels.email.bounce_class import classify, has_clue, status_in
from hub.channels.email.report_fields import (
    MAX_RECIPIENTS,
    first_address,
    human_text,
    near,
    quoted_headers,
    quoted_message_id,
    returned_to,
)
from hub.channels.email.report_types import Kind, Report, Verdict

log = logging.getLogger(__name__)

# A Subject or From is read this far: a header of megabytes says nothing more, and decoding
# its encoded words is not free.
MAX_HEADER = 4 * 1024
# What flufl.bounce's detectors are given: the top of the message, where a bounce's own words
# are (the corpus's longest bounce has 1,469 lines, 73 KB). They match dozens of patterns
# against every line, some quadratic in a line's length: lines are cut at RFC 5322's 998.
MAX_DETECTED_BYTES = 256 * 1024
MAX_DETECTED_LINES = 4000
MAX_LINE = 998
# Every pattern here is linear in its text (see report_fields): literal alternatives, and
# each repeat stopped by the character after it.
_DAEMON = re.compile(r"mailer-daemon|post_?master|mail delivery|mail ?system|mdaemon", re.I)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (?:status|fail|problem|notification|report)|returned mail"
    r"|failure notice|mail delivery|could not be delivered|delivery has failed"
    r"|non[- ]?delivery|not delivered|rejected|returned to sender|nondeliverable"
    r"|mail failure|delivery failure|メールエラー|エラー通知|配信エラー|配信できません",
    re.I,
)
# A bounce from a system that names itself nothing in particular still says it failed.
_FAILED_WORDS = re.compile(
    r"could ?n[o']t be delivered|was ?n[o']t delivered|undeliverable|delivery (?:has )?failed"
    r"|unable to deliver|送信できませんでした|配信できませんでした",
    re.I,
)
_SES_EVENT = re.compile(r'"notificationType"\s*:\s*"(\w+)"')
_SES_ADDRESS = re.compile(r'"emailAddress"\s*:\s*"([^"]{3,320})"')
# `<a@example.org>: 550 5.1.1 User unknown` (OpenSMTPD, many gateways), and old sendmail's
# `554 <a@example.org>... Host unknown`. No two repeats next to each other share a character.
_LISTED = re.compile(r"^[ \t]*(?:[45]\d\d[ \t])?(<?[^\s<>@]+@[^\s<>:]+>?)(?::|\.\.\.)?[ \t]*(.*)$")
_AUTO_REPLY_SUBJECT = re.compile(
    r"out of (?:the )?office|vacation|auto(?:matic)?[- ]?(?:reply|response|answer)"
    r"|^\s*auto:|away from|abwesen|absence|I am away|on leave|autoresponder|respuesta autom",
    re.I,
)


def read_other(raw: bytes, message: Message) -> Report | None:
    """A non-standard bounce or an auto-reply, else None."""
    subject = _decoded(message, "Subject")
    sender = _decoded(message, "From")
    if _auto_reply(message, subject, sender):
        verdict = Verdict(None, Kind.NOT_BOUNCE, None, "auto-reply", None)
        return Report(quoted_message_id(message), returned_to(message), (verdict,), "auto-reply")
    text = human_text(message)
    ses = _ses_notification(message, text)
    if ses is not None:
        return ses
    temporary, permanent = _detect(raw)
    failed = _in_order(permanent, text)
    delayed = _in_order(temporary - permanent, text)[: MAX_RECIPIENTS - len(failed)]
    named = tuple(sorted(failed + delayed))
    verdicts = [_verdict(a, text, "failed", named) for a in failed]
    verdicts += [_verdict(a, text, "delayed", named) for a in delayed]
    failed_header = message.get("X-Failed-Recipients")
    if not verdicts and failed_header:
        for part in str(failed_header).split(","):
            address = first_address(part)
            if address:
                verdicts.append(_verdict(address, text, "failed"))
            if len(verdicts) >= MAX_RECIPIENTS:
                break
    if not verdicts:
        listed = _listed_failures(text, returned_to(message))
        verdicts = [_verdict(a, text, "failed", listed) for a in listed]
    said_so = _BOUNCE_SUBJECT.search(subject) or (_FAILED_WORDS.search(text) and has_clue(text))
    if not verdicts and (_DAEMON.search(sender) or said_so):
        status = status_in(text)
        if status or has_clue(text) or _BOUNCE_SUBJECT.search(subject) or _DAEMON.search(sender):
            address = _named_original_recipient(message, text)
            if address:
                verdicts.append(_verdict(address, text, "failed"))
            else:
                kind = classify(action="failed", status=status, detail=text)
                verdicts.append(Verdict(None, kind, status, _excerpt(text), "failed"))
    if not verdicts:
        return None
    return Report(quoted_message_id(message), returned_to(message), tuple(verdicts), "detector")


def _in_order(addresses: set[str], text: str) -> list[str]:
    """The first MAX_RECIPIENTS addresses in the order the bounce's words name them (those
    it does not name last, alphabetically), so that the verdicts follow the bounce."""
    lower = text.lower()
    candidates = sorted(addresses)[: 4 * MAX_RECIPIENTS]
    at = {a: position if (position := lower.find(a)) >= 0 else len(lower) for a in candidates}
    return sorted(candidates, key=lambda a: (at[a], a))[:MAX_RECIPIENTS]


def _ses_notification(message: Message, text: str) -> Report | None:
    """Amazon SES notifications e-mailed through SNS: a delivery is news, a complaint a
    complaint (the webhook reads them in full; bounces go on to the detectors)."""
    event = _SES_EVENT.search(text)
    if event is None or event.group(1) not in ("Delivery", "Complaint"):
        return None
    name = event.group(1)
    kind = Kind.COMPLAINT if name == "Complaint" else Kind.NOT_BOUNCE
    named = _SES_ADDRESS.findall(text) if kind is Kind.COMPLAINT else []
    addresses = [a for a in dict.fromkeys(first_address(m) for m in named) if a]
    addresses = addresses[:MAX_RECIPIENTS]
    verdicts = tuple(Verdict(a, kind, None, name.lower()) for a in addresses)
    return Report(
        quoted_message_id(message),
        returned_to(message),
        verdicts or (Verdict(None, kind, None, name.lower()),),
        "ses",
    )


def _detect(raw: bytes) -> tuple[set[str], set[str]]:
    """flufl.bounce's (temporary, permanent) addresses, lower case. Its detectors are
    heuristics over arbitrary text; one that trips on a malformed message finds nothing here
    rather than failing the report (the others' findings are lost with it: all_failures stops
    at the first exception). They read the top of the message only (see MAX_DETECTED_BYTES)."""
    lines = raw[:MAX_DETECTED_BYTES].split(b"\n", MAX_DETECTED_LINES)[:MAX_DETECTED_LINES]
    top = b"\n".join(line[:MAX_LINE] for line in lines)
    legacy = email.message_from_bytes(top, policy=email.policy.compat32)
    try:
        temporary, permanent = all_failures(legacy)
    except Exception as exc:  # a third-party heuristic failing means "found nothing"
        # One line, not a traceback: junk mailed to the bounce address trips its detectors
        # (Yale's on a message without From), and every such mail would flood the log.
        log.info("flufl.bounce could not read a message: %s: %s", type(exc).__name__, exc)
        return set(), set()
    return _addresses(temporary), _addresses(permanent)


def _addresses(found: frozenset[bytes] | set[bytes]) -> set[str]:
    addresses = set()
    for value in found:
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        address = first_address(text)
        if address:
            addresses.add(address)
    return addresses


def _verdict(address: str, text: str, action: str, named: tuple[str, ...] = ()) -> Verdict:
    """Classified on the words next to the address (up to the next address named) when they
    say something, else on all of the bounce's own text."""
    window = near(text, address, named)
    clue = window if status_in(window) or has_clue(window) else text
    status = status_in(clue)
    kind = classify(action=action, status=status, detail=clue)
    if action == "delayed":
        kind = Kind.NOT_BOUNCE
    return Verdict(address, kind, status, _excerpt(clue), action)


def _listed_failures(text: str, ours: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses a bounce lists one to a line with the reply that refused them (see
    _LISTED), not the addresses the bounce was sent to."""
    own = {first_address(value) for value in ours}
    found = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        listed = _LISTED.match(line)
        if listed is None:
            continue
        address = first_address(listed.group(1))
        said = listed.group(2) + " " + (lines[i + 1] if i + 1 < len(lines) else "")
        if address and address not in own and (status_in(said) or has_clue(said)):
            found.append(address)
            if len(set(found)) >= MAX_RECIPIENTS:
                break
    return tuple(dict.fromkeys(found))


def _named_original_recipient(message: Message, text: str) -> str | None:
    """A recipient of the quoted original that the bounce's own text names: the address it
    is about, when no detector found one."""
    quoted = quoted_headers(message)
    if quoted is None:
        return None
    lower = text.lower()
    for header in ("To", "Cc"):
        for value in str(quoted.get(header, "")).split(",")[:MAX_RECIPIENTS]:
            address = first_address(value)
            if address and address in lower:
                return address
    return None


def _decoded(message: Message, name: str) -> str:
    """A header's text: RFC 2047 encoded words decoded (Japanese subjects are), raw UTF-8
    read as such."""
    raw = next((v for k, v in message.raw_items() if k.lower() == name.lower()), "")
    text = str(raw)[:MAX_HEADER].encode("ascii", "surrogateescape").decode("utf-8", "replace")
    try:
        return str(make_header(decode_header(text)))
    except (LookupError, ValueError, UnicodeError):  # a malformed or unknown encoding
        return text


def _excerpt(text: str) -> str | None:
    words = " ".join(text.split())
    return words[:500] or None


def _auto_reply(message: Message, subject: str, sender: str) -> bool:
    """RFC 3834's Auto-Submitted and the headers vacation programs add, or a vacation-like
    subject; a mail system's own notice (from MAILER-DAEMON, say) is a bounce, not this."""
    if _DAEMON.search(sender) or _BOUNCE_SUBJECT.search(subject):
        return False
    if message.get("X-Autoreply") or message.get("X-Autorespond"):
        return True
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence == "auto_reply":
        return True
    submitted = str(message.get("Auto-Submitted", "")).strip().lower()
    return submitted.startswith("auto-replied") or bool(_AUTO_REPLY_SUBJECT.search(subject))
