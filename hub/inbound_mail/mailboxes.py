"""The two mailboxes Hub receives mail for, and which one an envelope recipient is: the bounce
mailbox (HUB_EMAIL_BOUNCE_ADDRESS, with or without its VERP detail) and the unsubscribe mailbox
(HUB_UNSUBSCRIBE_MAILTO, plain or with a token as detail). Every other address is refused at
RCPT time, so the listener can never relay mail anywhere."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from hub.channel_config import channel_options
from hub.settings import Settings


class Kind(enum.StrEnum):
    BOUNCE = "bounce"
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Recipient:
    """One accepted envelope recipient: which mailbox, the address as given (for the report's
    X-Original-To) and the detail after `+` (a VERP key or an unsubscribe token), if any."""

    kind: Kind
    address: str
    detail: str | None


class NoMailboxes(ValueError):
    """Neither mailbox is configured: a listener would refuse every message."""


@dataclass(frozen=True, slots=True)
class Mailboxes:
    bounce: str | None  # e.g. bounces@example.com
    unsubscribe: str | None  # e.g. unsubscribe@example.com

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailboxes:
        """The bounce mailbox is the e-mail channel's (VERP's base address); the unsubscribe
        one is what List-Unsubscribe's mailto: names. Raises NoMailboxes when both are unset."""
        smtp = channel_options(settings).get("smtp")
        bounce = getattr(smtp, "email_bounce_address", None)
        made = cls(bounce=bounce or None, unsubscribe=settings.unsubscribe_mailto or None)
        if made.bounce is None and made.unsubscribe is None:
            raise NoMailboxes(
                "inbound mail needs HUB_EMAIL_BOUNCE_ADDRESS or HUB_UNSUBSCRIBE_MAILTO (or both): "
                "they are the only mailboxes it accepts mail for"
            )
        return made

    def which(self, address: str) -> Recipient | None:
        """The mailbox `address` is, or None. Mailbox names and domains compare without case
        (as mail systems treat them); the detail keeps its case (a token is case-sensitive)."""
        local, at, domain = address.strip().strip("<>").rpartition("@")
        if not at or not local or not domain:
            return None
        base, plus, detail = local.partition("+")
        for kind, mailbox in ((Kind.BOUNCE, self.bounce), (Kind.UNSUBSCRIBE, self.unsubscribe)):
            if mailbox is None:
                continue
            own_local, _, own_domain = mailbox.rpartition("@")
            if base.lower() == own_local.lower() and domain.lower() == own_domain.lower():
                return Recipient(kind, address, detail if plus and detail else None)
        return None

    def described(self) -> str:
        """For the banner: `bounces@example.com, unsubscribe@example.com`."""
        return ", ".join(m for m in (self.bounce, self.unsubscribe) if m)
