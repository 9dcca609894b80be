"""The shape of a bounce or complaint report once read: one verdict per recipient. Its own
module so the format readers and the classifier share it without importing each other."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Kind(enum.StrEnum):
    """What a report says happened to one recipient, and so what Hub does about it."""

    HARD_BOUNCE = "hard_bounce"  # no such mailbox or domain: suppress the address
    SOFT_BOUNCE = "soft_bounce"  # full, too large, or given up after retrying: failed, counted
    BLOCKED = "blocked"  # 5.7.x spam, policy or reputation: recorded and shown, nobody suppressed
    COMPLAINT = "complaint"  # the person called it spam: suppress for good
    NOT_BOUNCE = "not_bounce"  # delayed, delivered, relayed, expanded, an auto-reply: nothing


class NotAReport(ValueError):
    """The bytes are no bounce, complaint or auto-reply (or cannot be read safely)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a report says of one recipient (one per-recipient block of a DSN)."""

    address: str | None  # lower case; None when the report names nobody (found by VERP)
    kind: Kind
    status: str | None = None  # the enhanced status code, e.g. 5.1.1
    detail: str | None = None  # Diagnostic-Code, Feedback-Type or the detector's words
    action: str | None = None  # the DSN's Action, lower case


@dataclass(frozen=True, slots=True)
class Report:
    message_id: str | None  # of the original, as the report quotes it
    # Where the report was sent (the envelope sender of the original, a VERP address for
    # Hub's mail): each value of the RETURN_HEADERS, in that order, as written.
    returned_to: tuple[str, ...]
    verdicts: tuple[Verdict, ...]  # at least one
    source: str = "dsn"  # how it was read: dsn, arf, detector, ses, sendgrid

    def about(self, address: str | None) -> Verdict:
        """The verdict on `address` (lower case), else the report's headline verdict."""
        for verdict in self.verdicts:
            if address is not None and verdict.address == address:
                return verdict
        return self.headline

    @property
    def headline(self) -> Verdict:
        """The most consequential verdict: what the report is, said in one word."""
        return min(self.verdicts, key=lambda verdict: _WEIGHT[verdict.kind])

    @property
    def kind(self) -> Kind:
        return self.headline.kind

    @property
    def status(self) -> str | None:
        return self.headline.status

    @property
    def detail(self) -> str | None:
        return self.headline.detail

    @property
    def recipients(self) -> tuple[str, ...]:
        """The addresses the report is about, lower case."""
        return tuple(dict.fromkeys(v.address for v in self.verdicts if v.address))


_WEIGHT = {
    Kind.COMPLAINT: 0,
    Kind.HARD_BOUNCE: 1,
    Kind.SOFT_BOUNCE: 2,
    Kind.BLOCKED: 3,
    Kind.NOT_BOUNCE: 4,
}
