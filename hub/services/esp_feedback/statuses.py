"""What a provider's per-recipient status and diagnostic mean for Hub: the enhanced status code
(RFC 3463) first, the diagnostic's words where the code says little (x.0.0).

Providers pass on the receiving server's words; they do not agree on what "bounce" means. Hard
is kept for a mailbox or domain that does not exist (RELIABILITY 26): a spam or policy block
(5.7.x) and a full mailbox are not a permanent refusal of the person.
"""

from __future__ import annotations

import re

from hub.channels.email.reports import Kind

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Codes that say the address itself is wrong, for good: bad mailbox, bad domain, bad syntax,
# moved with no forwarding, a null MX (RFC 7505), a disabled mailbox.
_BAD_ADDRESS = {"1.0", "1.1", "1.2", "1.3", "1.6", "1.10", "2.1"}
# Codes that say the mailbox exists but took nothing this time: full, or the message too big.
_FULL_OR_TOO_LARGE = {"2.2", "2.3", "3.4"}
_NO_SUCH = re.compile(
    r"user unknown|unknown user|no such (user|mailbox|recipient|address)|does not exist|"
    r"doesn't exist|not found|invalid (recipient|mailbox|address)|"
    r"mailbox unavailable|no mailbox|unrouteable|unroutable",
    re.IGNORECASE,
)
_FULL = re.compile(r"mailbox full|quota|over ?quota|insufficient storage|too large|size", re.I)
_BLOCK = re.compile(
    r"spam|block|policy|reputation|blacklist|denylist|dnsbl|rbl|content rejected|"
    r"not accepted|refused|dmarc|spf|dkim|authentication",
    re.IGNORECASE,
)


def status_in(status: str | None, detail: str | None = None) -> str | None:
    """The most specific enhanced status code given: `status`, unless it is a generic x.0.0
    and the diagnostic quotes a better one (`550 5.1.1 <a@b>: user unknown`)."""
    given = _STATUS.search(status or "")
    quoted = _STATUS.search(detail or "")
    if given and not (quoted and given.group(2, 3) == ("0", "0")):
        return given.group(0)
    return quoted.group(0) if quoted else None


def kind_of(status: str | None, detail: str | None, *, gave_up: bool) -> Kind:
    """The kind of a failure the provider reports for one recipient.

    `gave_up`: the provider stopped trying (a bounce, not a deferral), so a 4.x.x status is a
    soft bounce rather than a delay. This small mapping stands in for the shared classifier
    of the DSN readers (issue 20, item 1) until that one can be called with a status and a
    diagnostic.
    """
    code = status_in(status, detail)
    words = detail or ""
    if code is None:
        return _by_words(words, otherwise=Kind.SOFT_BOUNCE) if gave_up else Kind.NOT_BOUNCE
    klass, rest = code[0], code[2:]
    if klass != "5":  # 2.x.x is no failure; 4.x.x is a delay, or a failure given up on
        return Kind.SOFT_BOUNCE if klass == "4" and gave_up else Kind.NOT_BOUNCE
    if rest in _BAD_ADDRESS:
        return Kind.HARD_BOUNCE
    if rest in _FULL_OR_TOO_LARGE:
        return Kind.SOFT_BOUNCE
    # Some servers answer 5.7.1 for an unknown user; the words tell those apart.
    return _by_words(words, otherwise=Kind.BLOCKED if rest.startswith("7.") else Kind.HARD_BOUNCE)


def _by_words(words: str, *, otherwise: Kind) -> Kind:
    if _NO_SUCH.search(words):
        return Kind.HARD_BOUNCE
    if _FULL.search(words):
        return Kind.SOFT_BOUNCE
    if _BLOCK.search(words):
        return Kind.BLOCKED
    return otherwise
