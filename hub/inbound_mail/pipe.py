"""One message from an MTA's pipe transport (`hub inbound-mail --stdin --recipient ADDR`),
answered with the exit codes of sysexits.h, which Postfix's pipe(8) and Exim's pipe transport
read: done, no such user (bounced), data error (bounced) or temporary failure (retried)."""

from __future__ import annotations

import enum
import logging
from typing import BinaryIO

from hub.inbound_mail.handling import Answer, Inbox
from hub.inbound_mail.mailboxes import Mailboxes

log = logging.getLogger("hub.inbound_mail")


class Exit(enum.IntEnum):
    OK = 0
    DATAERR = 65  # EX_DATAERR: the message is over the size limit
    NOUSER = 67  # EX_NOUSER: the recipient is not one of Hub's mailboxes
    TEMPFAIL = 75  # EX_TEMPFAIL: try again later (the database is away); nothing was changed


def deliver(
    inbox: Inbox, mailboxes: Mailboxes, *, recipient: str, source: BinaryIO, max_bytes: int
) -> Exit:
    """Read the message from `source` (at most max_bytes) and handle it for `recipient`."""
    to = mailboxes.which(recipient)
    if to is None:
        log.info("piped mail refused: not a mailbox of Hub's")
        return Exit.NOUSER
    raw = source.read(max_bytes + 1)
    if len(raw) > max_bytes:
        log.info("piped mail to the %s mailbox refused: over %d bytes", to.kind.value, max_bytes)
        return Exit.DATAERR
    answer = inbox.deliver(raw, [to], peer="pipe")[0]
    return Exit.OK if answer is Answer.DONE else Exit.TEMPFAIL
