"""Reading the pieces every report format shares: the header-style blocks of a report part, the
addresses in them (RFC 3464 `rfc822;`, RFC 6533 `utf-8;` with `\\x{..}`, xtext), the original's
Message-ID wherever a bounce quotes it, and the address the report was sent back to."""

from __future__ import annotations

import email
import email.policy
import re
from collections.abc import Iterator
from email.message import Message
from itertools import islice

# Where a mail system puts the address a bounce was sent to (the envelope sender we used).
RETURN_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To")
MAX_MIME_DEPTH = 16
# Text read from one part: a diagnostic or quoted headers are near the top; a 10 MB
# attachment is not read whole for them. Text joined from several parts is cut to this too.
MAX_TEXT = 256 * 1024
# The words a reporting system wrote itself: a few KB in every bounce of the corpus (AOL's,
# the longest, 14 KB). Past this it is a quoted original or padding, and every recipient's
# words are looked for in it.
MAX_HUMAN_TEXT = 16 * 1024
# Recipients read from one report. Hub sends each message to one recipient, and the corpus's
# longest report names 7; reading thousands would only let a stranger's mail cost thousands.
MAX_RECIPIENTS = 20
# Report fields that may be written more than once, each time about another recipient: an
# ARF report about one message sent to several people names each (RFC 5965, section 3.2).
REPEATED = frozenset({"original-rcpt-to"})

# Every pattern over a report's text runs in time linear in the text: no nested or adjacent
# unbounded repeats that can match the same characters, and each repeat either bounded or
# stopped by a character it cannot cross. `re` keeps the GIL for a whole search, so one
# quadratic pattern over attacker mail would stall every thread of the process.

QUOTING_TYPES = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
_XTEXT = re.compile(r"\+([0-9A-F]{2})")
# RFC 5321's limits: 64 octets before the `@`, 255 after. Bounded, and the part before the
# `@` cannot contain one, so each `<` (or each word) is tried once, in constant time.
_BRACKETED = re.compile(r"<([^<>\s@]{1,64}@[^<>\s]{1,255})>")
_WORD = r"[^\s<>\"';:,()\[\]]"
# A whole word only: it starts after a separator (not at each of a long word's characters,
# which made the search quadratic) and ends before one (not cut at 255 characters).
_BARE = re.compile(rf"(?<!{_WORD})[^\s<>\"';:,()\[\]@]{{1,64}}@{_WORD}{{1,255}}(?!{_WORD})")
# Where a non-standard bounce starts quoting the original: nothing after it is the bounce's
# own words (a DKIM-Signature or a "policy" in the original must not read as a refusal).
_QUOTE_START = re.compile(
    r"^[ \t-]*(?:below this line is a copy|original message follows|this is a copy of"
    r"|returned message|the header of the original|original message|included is a copy"
    r"|a copy of the original|message headers follow|unsent message below|original message"
    r" headers)|^(?:Received|DKIM-Signature|Return-Path|X-Originating-IP): ",
    re.IGNORECASE | re.MULTILINE,
)
# Not across another `<`: each `<` starts one scan that stops at the next, so `<<<<...` is
# read once rather than 2,000 characters per `<`.
_TAG = re.compile(r"<[^<>]{0,2000}>")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")
_QUOTED_ID = re.compile(r"^[ \t>]*Message-ID:[ \t]*(<[^<>\s]{3,990}>)", re.I | re.M)


def walk(message: Message) -> Iterator[tuple[Message, int]]:
    """Every part with its depth, iteratively, refusing nothing (the depth is checked once in
    `reports._check_depth`); a message/rfc822 part's inner message is a child like any other.
    A stack, children pushed in reverse: the same order as a queue's front, without moving
    every pending part for each one taken (quadratic in a message of thousands of parts)."""
    pending = [(message, 1)]
    while pending:
        part, depth = pending.pop()
        yield part, depth
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend((c, depth + 1) for c in reversed(payload) if isinstance(c, Message))


def human_text(message: Message) -> str:
    """The text the reporting system wrote itself: its text/plain parts (or text/html when it
    wrote no plain one), not those of the original it quotes; at most MAX_HUMAN_TEXT of it."""
    plain: list[str] = []
    html: list[str] = []
    pending = [message]
    while pending:
        part = pending.pop()
        if part.get_content_maintype() == "message":
            continue
        payload = part.get_payload()
        if isinstance(payload, list):
            pending.extend(child for child in reversed(payload) if isinstance(child, Message))
        elif part.get_content_type() == "text/plain" or part.get_content_maintype() == "multipart":
            plain.append(text_of(part))  # a multipart here is one whose boundary is wrong
        elif part.get_content_type() == "text/html":
            html.append(_TAG.sub(" ", text_of(part)))
    joined = joined_text(plain or html)
    return _QUOTE_START.split(joined, maxsplit=1)[0][:MAX_HUMAN_TEXT]


def joined_text(texts: list[str], separator: str = "\n") -> str:
    """`texts` joined, cut at MAX_TEXT characters: what is read from many parts costs no more
    than what is read from one."""
    found: list[str] = []
    size = 0
    for text in texts:
        if size >= MAX_TEXT:
            break
        found.append(text[: MAX_TEXT - size])
        size += len(found[-1]) + len(separator)
    return separator.join(found)


def near(text: str, address: str | None, others: tuple[str, ...] = (), size: int = 800) -> str:
    """The words about one address in a bounce's text: from where it is first named, `size`
    characters, or up to where one of the `others` is named (empty when it is not named).
    The others are looked for inside the window only, so a report naming many addresses
    costs the window's size per address, not the whole text's."""
    lower = text.lower()
    at = lower.find(address) if address else -1
    if at < 0:
        return ""
    end = at + size
    for other in others:
        there = lower.find(other, at + len(address or ""), end) if other != address else -1
        if there >= 0:
            end = there
    return text[at:end]


def loose_text(message: Message) -> str:
    """Every body the parser could not split into parts (a multipart whose boundary is wrong,
    as in bounces some gateways rewrite), as text, at most MAX_TEXT of it."""
    found = []
    for part, _ in walk(message):
        if part.get_content_maintype() == "multipart" and isinstance(part.get_payload(), str):
            found.append(text_of(part))
    return joined_text(found)


def text_of(part: Message) -> str:
    """A part's body as text, decoded from its transfer encoding and charset, replacing what
    does not decode (bounces mislabel charsets often)."""
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        data = payload[:MAX_TEXT]
        for charset in (part.get_content_charset() or "utf-8", "utf-8"):
            try:
                return data.decode(charset)
            except (LookupError, UnicodeError):  # unknown, or not what the label says
                continue
        return data.decode("utf-8", "replace")
    if isinstance(payload, list):  # message/*: the inner message as text
        return joined_text([_as_text(inner) for inner in payload if isinstance(inner, Message)])
    return str(payload or "")[:MAX_TEXT]


def _as_text(message: Message) -> str:
    headers = joined_text([f"{name}: {value}" for name, value in message.raw_items()])
    payload = message.get_payload()
    body = payload[:MAX_TEXT] if isinstance(payload, str) else ""
    return ((headers + "\n" if headers else "") + "\n" + body)[:MAX_TEXT]


def blocks(part: Message) -> list[dict[str, str]]:
    """The header-style blocks of a delivery-status, global-delivery-status or feedback-report
    part, keys lower case, values unfolded; empty blocks (the trailing blank one Exchange,
    Gmail and SES write) dropped. The per-message block and MAX_RECIPIENTS recipient blocks
    at most: the rest of a report naming thousands is not read."""
    payload = part.get_payload()
    inner = (
        [block for block in payload if isinstance(block, Message)]
        if isinstance(payload, list)
        else []
    )
    if part.get_content_type() == "message/delivery-status":
        found = (_fields(block.raw_items()) for block in inner)
        return list(islice((block for block in found if block), MAX_RECIPIENTS + 1))
    # Other message/* types reach here parsed as one message (the first block its headers,
    # the rest its body), or as text: read them as text.
    text = joined_text([_as_text(m) for m in inner], "\n\n") if inner else text_of(part)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks = (chunk.strip("\n") for chunk in _BLANK_LINE.split(text))
    # Chunks that are no block (stray words) are parsed too, but not without end.
    written = islice((chunk for chunk in chunks if chunk.strip()), 2 * (MAX_RECIPIENTS + 1))
    fields = (
        _fields(email.message_from_string(chunk + "\n", policy=email.policy.compat32).raw_items())
        for chunk in written
    )
    return list(islice((block for block in fields if block), MAX_RECIPIENTS + 1))


def _fields(items: Iterator[tuple[str, str]] | list[tuple[str, str]]) -> dict[str, str]:
    """The first value of each field, but every value of a REPEATED one, one to a line."""
    fields: dict[str, str] = {}
    for name, value in items:
        key = name.strip().lower()
        text = " ".join(str(value).split())
        if key and key not in fields:
            fields[key] = text
        elif key in REPEATED and fields[key].count("\n") < MAX_RECIPIENTS - 1:
            fields[key] += "\n" + text
    return fields


def address_in(value: str | None, *, xtext: bool = False) -> str | None:
    """The address in a recipient field, lower case: `rfc822; Alice@Example.com`,
    `utf-8; j\\x{FC}rgen@example.de` (RFC 6533), `<alice@example.com>`, or bare. `xtext`
    undoes RFC 3461's `+2B` escapes (Original-Recipient is written in xtext)."""
    if not value:
        return None
    kind, semicolon, rest = value.partition(";")
    text = rest if semicolon else value
    kind = kind.strip().lower() if semicolon else ""
    if kind in ("utf-8", "utf8") or "\\x{" in text:
        text = _UTF8_ESCAPE.sub(_unescape, text)
    if xtext and kind == "rfc822":
        text = _XTEXT.sub(lambda m: chr(int(m.group(1), 16)), text)
    return first_address(text)


def _unescape(found: re.Match[str]) -> str:
    code = int(found.group(1), 16)
    return chr(code) if code <= 0x10FFFF else ""


def first_address(text: str) -> str | None:
    """The first e-mail address in a piece of text, lower case."""
    found = _BRACKETED.search(text) or _BARE.search(text)
    if found is None:
        return None
    address = found.group(1) if found.re is _BRACKETED else found.group(0)
    address = address.strip(".").lower()
    local, _, domain = address.rpartition("@")
    return address if local and ("." in domain or domain == "localhost") else None


def quoted_message_id(message: Message) -> str | None:
    """The original's Message-ID as the report quotes it: in a message/rfc822 or message/global
    part, text/rfc822-headers or message/global-headers, else inline in the text of a
    non-standard bounce (`Message-ID: <...>` among the quoted headers)."""
    texts: list[str] = []
    for part, _ in walk(message):
        content_type = part.get_content_type()
        if content_type in QUOTING_TYPES:
            found = _QUOTED_ID.search(_quoted_headers(part))
            if found:
                return found.group(1)
        elif part.get_content_maintype() == "text" and part is not message:
            texts.append(text_of(part))
    if not message.is_multipart():
        texts.append(text_of(message))
    for text in texts:
        found = _QUOTED_ID.search(text)
        if found:
            return found.group(1)
    return None


def _quoted_headers(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        headers = joined_text([f"{name}: {value}" for name, value in payload[0].raw_items()])
        return headers + "\n" if headers else ""
    text = text_of(part).replace("\r\n", "\n")
    return text.split("\n\n", 1)[0]


def quoted_headers(message: Message) -> Message | None:
    """The headers of the original the report quotes, if it quotes any."""
    for part, _ in walk(message):
        if part.get_content_type() in QUOTING_TYPES:
            return email.message_from_string(_quoted_headers(part), policy=email.policy.compat32)
    return None


def returned_to(message: Message) -> tuple[str, ...]:
    """Each value of RETURN_HEADERS, in that order, as written."""
    found = []
    for header in RETURN_HEADERS:
        for name, value in message.raw_items():
            if name.lower() == header.lower():
                found.append(" ".join(str(value).split()))
    return tuple(found)
