"""What one recipient's failure means for Hub: the status code and the diagnostic words of a
bounce, read into a `Kind` (hard, soft, blocked, not a bounce).

One function decides for every format (DSNs, the non-standard bounces the detectors read, and
the ESPs' webhooks), so a 5.1.1 means the same wherever it came from. The rules, in order:

1. `Action` delayed, delivered, relayed or expanded is news, not a failure.
2. The enhanced status code when it is specific: 5.7.x is a refusal by policy (blocked);
   x.2.2 full, x.2.3 and x.3.4 too large are soft; x.1.0-x.1.3, x.1.6, x.1.10, x.2.1, x.4.4
   name a mailbox or domain that is not there (hard).
3. Otherwise the words: spam, policy, reputation, block lists, DMARC/SPF mean blocked (a
   generic 550 reading "blocked as spam" is not about the mailbox); "mailbox full" or "over
   quota" soft; "user unknown", "no such user", "host not found" hard.
4. A 4.x.x that was given up on (`Action: failed`) is soft.
5. A 5.x.x with no clue is soft, not hard. In the sisimai corpus (tests/data/bounces) 6 of
   the 90 permanent failures these rules leave soft are a missing mailbox by sisimai's
   reading; the rest are expiries, sender rejections, system, network and content errors.
   A hard bounce suppresses the person for good while soft bounces suspend only after
   repeats, so guessing hard would lose people who can still be reached.
"""

from __future__ import annotations

import re

from hub.channels.email.report_types import Kind

__all__ = ["MAX_CLUE", "NOT_COMPLAINTS", "classify", "has_clue", "is_specific", "status_in"]

NEWS_ACTIONS = frozenset({"delayed", "delivered", "relayed", "expanded"})
# ARF feedback types (RFC 5965, 6591) that are not a complaint. The others (abuse, fraud,
# virus, other, opt-out) are a person, or their provider for them, saying "not this", and
# end with the address suppressed. `not-spam` is the opposite (the person took it out of
# their spam folder); `auth-failure`, and the `dkim` or `spf` some reporters write in its
# place, say our DKIM/SPF/DMARC failed, nothing about the person. The one list for every
# source of feedback: mailed ARF reports and the ESPs' webhooks alike.
NOT_COMPLAINTS = frozenset({"not-spam", "auth-failure", "dkim", "spf"})
# The characters of a text the classifier reads. A bounce says why in a line or two near its
# top; its word lists cost about 3 microseconds a character, so a long text (padding, or one
# clue per recipient of a report naming many) is not read whole.
MAX_CLUE = 4 * 1024

# `5.1.1`, `5.1.10`: the enhanced status code (RFC 3463), wherever it appears in a text.
_ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?![\w.]*\w)")
# `550`, `452-`: the basic SMTP reply code, at the start of a line or after `smtp;`.
_BASIC = re.compile(r"(?:^|;|\s)([245][0-5]\d)(?=[\s\-]|$)", re.MULTILINE)

# 5.1.7 and 5.1.8 are about OUR address (the sender's), 5.7.13 a disabled account (RFC 3463).
_SENDER_DETAILS = frozenset({"1.7", "1.8"})
_HARD_DETAILS = frozenset({"1.0", "1.1", "1.2", "1.3", "1.6", "1.10", "2.1", "4.4"})
_SOFT_DETAILS = frozenset({"2.2", "2.3", "3.4"})

_GONE = re.compile(
    r"no such (?:user|mailbox|address|recipient|account|person|domain|local user)"
    r"|user(?:name)? (?:unknown|not found|does not exist|doesn'?t exist|is unknown)"
    r"|unknown (?:user|recipient|mailbox|address|local[- ]part|account|e-?mail address)"
    r"|(?:mailbox|account|address|recipient|user|addressee|e-?mail)(?: address)?"
    r" (?:is )?(?:unavailable|not found|does not exist|doesn'?t exist|is not valid"
    r"|not valid|invalid|unknown|disabled|is disabled|has been disabled|deactivated"
    r"|is inactive|inactive|no longer (?:exists|available|active|valid)|was not found"
    r"|has been (?:suspended|deleted|terminated|closed|removed)|(?:is )?closed|expired)"
    r"|invalid (?:recipient|mailbox|address|user|account)"
    r"|not (?:a )?valid (?:mailbox|recipient|user|address)"
    r"|(?:recipient|address) rejected: (?:user unknown|undeliverable|unverified|not found)"
    r"|account that you tried to reach (?:does not exist|is disabled)"
    r"|(?:host|domain) (?:not found|unknown|name not found|does not exist)"
    r"|(?:unknown|unroutable|unrouteable|non-?existent) (?:host|domain|address)"
    r"|no mx (?:record|host)|name service error|unrouteable|unroutable|nxdomain"
    r"|no mailbox here|not our customer|mailbox not available|recipient not found"
    r"|unknown or illegal alias|user not local|bad destination (?:mailbox )?address"
    r"|no (?:such )?mail ?box|does not have an? (?:e-?mail )?account|this user doesn'?t have"
    r"|sorry, no mailbox|is not a valid (?:user|mailbox)|user invalid|invalid address"
    r"|addressee unknown|domain (?:is )?not (?:found|exist)|deactivated mailbox"
    r"|user (?:account )?(?:is )?(?:suspended|disabled|deleted)|delivery error: dd"
    r"|address (?:not found|couldn'?t be found|could not be found)|couldn'?t be found"
    r"|(?:recipient|address) rejected(?:\.|: access denied|$)|user not exist|not exist"
    r"|not listed in (?:the )?(?:domino directory|public name|address book)"
    r"|invalid (?:final delivery )?userid|no valid recipients|invalid recipient"
    r"|recipient (?:unknown|invalid|does not exist)|domain is not reachable"
    r"|no such|unknown local|mailbox unknown|not a known user|unknown to this server"
    r"|recipient account is (?:blocked|disabled|locked)|mailbox is (?:frozen|disabled)"
    r"|does not accept mail|doesn'?t receive e-?mail|no mx record|disabled recipient"
    r"|name is not recognized|存在しません|見つかりません|リストにありません",
    re.IGNORECASE,
)
_SENDER = re.compile(
    r"sender address rejected|domain of sender|sender (?:domain|address) (?:does not exist"
    r"|must resolve|unknown|invalid)|sender (?:was )?rejected|my name was rejected",
    re.IGNORECASE,
)
_FULL = re.compile(
    r"over ?quota|quota (?:exceeded|exceed|full)|exceeded (?:the )?(?:storage|quota)"
    r"|(?:mail ?box|inbox|mail folder)(?: is)? (?:full|over|exceed)|disk (?:quota|full)"
    r"|insufficient (?:storage|disk|space)|mailbox size limit|storage allocation"
    r"|message (?:is )?too (?:large|big)|(?:message|mail) size (?:exceeds|limit)"
    r"|exceeds? (?:the )?(?:maximum|size|message size)|size exceeds|out of (?:storage|space)"
    r"|too much mail|full mailbox|mailbox has exceeded|not enough (?:space|storage)"
    r"|user has exceeded|would exceed|quota|メールボックスが一杯|容量",
    re.IGNORECASE,
)
_BLOCKED = re.compile(
    r"spam|junk mail|unsolicited|bulk mail|block ?list|black ?list|deny ?list|blocked"
    r"|reputation|dmarc|\bspf\b|dkim|policy|policies|\brbl\b|\bdnsbl\b|spamhaus|spamcop"
    r"|barracuda|sorbs|(?<!not )listed (?:at|in|on|by)|not authori[sz]ed"
    r"|(?<!rejected: )access denied"
    r"|relay(?:ing)? (?:access )?(?:denied|not permitted|not allowed)|virus|malware"
    r"|content rejected|refused by|message rejected|client host rejected|rejected due to"
    r"|reverse dns|\bptr\b|authentication (?:failed|required)|too many (?:messages|connections)"
    r"|rate limit|throttl|suspicious|prohibited|banned|filtered|not accepted|not allowed"
    r"|violation|invalid ip|mismatch|insecure|refused|not accepting|at a rate"
    r"|too many recipients|complaints|unauthenticated",
    re.IGNORECASE,
)


def status_in(text: str | None, *, success: bool = False) -> str | None:
    """The enhanced status code in `text`, else one made of its basic SMTP reply code
    (`550` -> `5.0.0`, `552` -> `5.2.2`: RFC 5321's "exceeded storage allocation").
    Success codes (2.x.x, 250) count only when `success` (a DSN's Status field): in a
    diagnostic they are the transcript's earlier, accepted commands."""
    if not text:
        return None
    text = text[:MAX_CLUE]
    classes = "245" if success else "45"
    for found in _ENHANCED.finditer(text):
        if found.group(1) in classes:
            return ".".join(found.groups())
    for found in _BASIC.finditer(text):
        code = found.group(1)
        if code[0] in classes:
            return "5.2.2" if code == "552" else f"{code[0]}.0.0"
    return None


def classify(*, action: str | None, status: str | None, detail: str | None) -> Kind:  # noqa: PLR0911
    """The kind of one recipient's outcome, from the DSN's Action and Status (or what the
    detectors found) and the diagnostic text. `status` is the Status field when there is one;
    the code inside `detail` is the fallback."""
    action = (action or "").strip().lower()
    if action in NEWS_ACTIONS:
        return Kind.NOT_BOUNCE
    text = (detail or "")[:MAX_CLUE]
    code = _enhanced(status) or status_in(text) or ""
    klass, _, subject_detail = code.partition(".")
    full, gone, blocked = (bool(p.search(text)) for p in (_FULL, _GONE, _BLOCKED))
    if klass == "2":
        return Kind.NOT_BOUNCE
    if subject_detail in _SOFT_DETAILS:
        return Kind.SOFT_BOUNCE
    if subject_detail in _SENDER_DETAILS or _SENDER.search(text):
        return Kind.BLOCKED
    if klass == "5" and subject_detail == "7.13":
        return Kind.HARD_BOUNCE
    if klass == "5" and subject_detail.startswith("7."):
        # 5.7.1 "invalid recipient" is a missing mailbox some servers report as a refusal.
        return Kind.HARD_BOUNCE if gone and not blocked else Kind.BLOCKED
    if klass == "5" and subject_detail in _HARD_DETAILS:
        if full and not gone:
            return Kind.SOFT_BOUNCE
        return Kind.BLOCKED if blocked and not gone else Kind.HARD_BOUNCE
    if full:
        return Kind.SOFT_BOUNCE
    if klass == "4":
        return Kind.SOFT_BOUNCE
    if blocked:
        return Kind.BLOCKED
    return Kind.HARD_BOUNCE if gone else Kind.SOFT_BOUNCE


def is_specific(status: str | None) -> bool:
    """Whether a status code alone says what happened (5.1.1, 4.2.2, 5.7.1), so the words
    around it need not be read; x.0.0 and the like do not."""
    code = _enhanced(status) or ""
    subject_detail = code.partition(".")[2]
    return subject_detail in _HARD_DETAILS | _SOFT_DETAILS or subject_detail.startswith("7.")


def has_clue(text: str | None) -> bool:
    """Whether the words say why (a full mailbox, a missing one, a refusal), code or not."""
    text = (text or "")[:MAX_CLUE]
    return any(pattern.search(text) for pattern in (_GONE, _FULL, _BLOCKED))


def _enhanced(status: str | None) -> str | None:
    status = (status or "")[:MAX_CLUE]
    return status_in(status, success=True) if status and _ENHANCED.search(status) else None
