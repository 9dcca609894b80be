"""What Hub does with one message for Hub's mailboxes, the same whether it came over SMTP,
LMTP or an MTA's pipe: a report to the bounce mailbox goes through hub.services.bounces exactly
as POST /inbound/email/bounce does; a mail to the unsubscribe mailbox through
hub.services.unsubscribes exactly as the one-click POST does.

A message is read once, however many recipients it has: the bounce mailbox's share one
reading (the costly part, up to the size limit) and one outcome; the unsubscribe mailbox's
share the subject, read from the headers alone.

Blocking (it talks to the database): the listener runs it in a worker thread. The answer is
only ever "done" or "try later". Mail that is not a report, or a token that is forged or
expired, is done too: refusing it would send a bounce to a sender who may be forged
(backscatter), and nothing would get better by trying again. Only a failure that may pass
(the database away, locked, a deadlock) asks the sending MTA to keep the message and retry.
"""

from __future__ import annotations

import email.policy
import enum
import functools
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser

from sqlalchemy.exc import SQLAlchemyError

from hub.channels.email import reports
from hub.domain import ActorKind
from hub.inbound_mail.mailboxes import Kind, Recipient
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.services import bounces, unsubscribes
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.unsubscribes import BadLink, Done
from hub.settings import Settings

log = logging.getLogger("hub.inbound_mail")
# "unsubscribe <token>", anywhere in the subject ("Re: Unsubscribe <token>" too). A token is
# URL-safe base64 and dots (itsdangerous); it never holds a space.
SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.-]{16,})", re.IGNORECASE)
HEADERS_END = re.compile(rb"\r?\n\r?\n")  # the blank line before the body
# Room kept under the bounce reader's limit for the X-Original-To lines stamped on a message.
STAMP_ROOM = 64 * 1024


def max_bytes(settings: Settings) -> int:
    """The largest message accepted: HUB_INBOUND_MAIL_MAX_BYTES, but never more than the
    bounce reader reads (less the stamp's room), or a report accepted would be dropped unread."""
    readable = reports.MAX_BYTES - STAMP_ROOM
    if settings.inbound_mail_max_bytes > readable:
        log.warning(
            "HUB_INBOUND_MAIL_MAX_BYTES is %d, more than a report is read to: %d is used",
            settings.inbound_mail_max_bytes,
            readable,
        )
        return readable
    return settings.inbound_mail_max_bytes


class Answer(enum.StrEnum):
    DONE = "done"  # 250: handled, or nothing to do and nothing to gain by a retry
    TRY_LATER = "try_later"  # 451 4.3.0: keep it and retry, nothing was changed


@dataclass(frozen=True, slots=True)
class Inbox:
    """What handling a message needs from the process: the runtime (sessions, the address
    hasher, this installation's message keys) and the personal links' signer."""

    runtime: Runtime
    links: LinkSigner

    @classmethod
    def build(cls, runtime: Runtime) -> Inbox:
        return cls(runtime, unsubscribes.signer(runtime.settings))

    def deliver(self, raw: bytes, recipients: Sequence[Recipient], *, peer: str) -> list[Answer]:
        """Handle `raw` for its accepted recipients: one answer each, in their order. Never
        raises."""
        bounce = [to.address for to in recipients if to.kind is Kind.BOUNCE]
        bounced = Answer.DONE
        if bounce:
            bounced = self._guarded(Kind.BOUNCE, peer, lambda: self._bounce(raw, bounce, peer))
        unsubscribed: dict[str | None, Answer] = {}  # by the address's token: twice is once
        details = dict.fromkeys(to.detail for to in recipients if to.kind is Kind.UNSUBSCRIBE)
        if details:
            subject = _subject_token(raw)
            for detail in details:
                tokens = [t for t in (detail, subject) if t]
                handle = functools.partial(self._unsubscribe, tokens, peer)
                unsubscribed[detail] = self._guarded(Kind.UNSUBSCRIBE, peer, handle)
        return [bounced if to.kind is Kind.BOUNCE else unsubscribed[to.detail] for to in recipients]

    def _guarded(self, kind: Kind, peer: str, handle: Callable[[], Answer]) -> Answer:
        try:
            return handle()
        except SQLAlchemyError as exc:
            log.warning(
                "inbound mail from %s to the %s mailbox: database error (%s), asked to retry",
                peer,
                kind.value,
                type(exc).__name__,
            )
            return Answer.TRY_LATER
        except Exception:
            # A fault of ours: keep the message with the sender (it retries) rather than lose it.
            log.exception("inbound mail from %s to the %s mailbox failed", peer, kind.value)
            return Answer.TRY_LATER

    def _bounce(self, raw: bytes, addresses: list[str], peer: str) -> Answer:
        # As a mailbox delivery would, say where the message was delivered: a report that
        # quotes nothing of the original still names its delivery by the VERP address. One
        # stamped copy, read once, for all of the bounce mailbox's recipients.
        stamp = b"".join(
            b"X-Original-To: " + address.encode("ascii", "replace") + b"\r\n"
            for address in dict.fromkeys(addresses)
        )
        try:
            report = bounces.parse(stamp + raw)
        except InvalidField as exc:
            log.info("inbound mail from %s to the bounce mailbox is not a report: %s", peer, exc)
            return Answer.DONE
        except Exception:
            # Reading is pure: a message that breaks it breaks it again on every retry, so a
            # retry would only keep it queued at the sender for days. Logged for us to fix.
            log.warning(
                "inbound mail from %s to the bounce mailbox could not be read: dropped",
                peer,
                exc_info=True,
            )
            return Answer.DONE
        runtime = self.runtime
        with runtime.sessions() as session:
            recorded = bounces.record(
                session, report, hasher=runtime.hasher, keys=runtime.message_keys
            )
            session.commit()
        if recorded.duplicate:
            outcome = "a copy of a report recorded before, nothing changed"
        elif recorded.delivery_id is None:
            outcome = f"no delivery changed ({recorded.why})"
        else:
            suppressed = ", address suppressed" if recorded.suppressed else ""
            outcome = f"delivery {recorded.delivery_id}{suppressed}"
        log.info(
            "inbound mail from %s to the bounce mailbox: %s, %s",
            peer,
            recorded.kind,
            outcome,
            extra={"delivery_id": recorded.delivery_id},
        )
        return Answer.DONE

    def _unsubscribe(self, tokens: list[str], peer: str) -> Answer:
        if not tokens:
            log.info(
                "inbound mail from %s to the unsubscribe mailbox carries no token (neither "
                "after + in the address nor 'unsubscribe <token>' in the subject): nothing done",
                peer,
            )
            return Answer.DONE
        with self.runtime.sessions() as session:
            found: unsubscribes.Target | BadLink = BadLink.INVALID
            for token in tokens:  # the address first: a mail client may rewrite the subject
                found = unsubscribes.target(session, self.links, Purpose.UNSUBSCRIBE, token)
                if not isinstance(found, BadLink):
                    break
            if isinstance(found, BadLink):
                log.info(
                    "inbound mail from %s to the unsubscribe mailbox: the token is %s, "
                    "nothing done",
                    peer,
                    found.value,
                )
                return Answer.DONE
            contact_id = found.contact.id
            topic = found.topic.key if found.topic is not None else None
            done = unsubscribes.unsubscribe(session, found, BY_MAIL)
            session.commit()
        said = {
            Done.UNSUBSCRIBED: f"unsubscribed from {topic}",
            Done.UNSUBSCRIBED_ALL: "unsubscribed from everything",
            Done.REQUIRED: f"{topic} is required: refused, nothing done",
        }[done]
        log.info(
            "inbound mail from %s to the unsubscribe mailbox: contact %s %s",
            peer,
            contact_id,
            said,
        )
        return Answer.DONE


# The person, by mail to the unsubscribe mailbox (the timeline's door: by mail).
BY_MAIL = Actor(
    kind=ActorKind.SELF_SERVICE,
    name="self-service",
    source=unsubscribes.BY_MAIL_SOURCE,
)


def _subject_token(raw: bytes) -> str | None:
    """The token in `Subject: unsubscribe <token>`, decoded as a mail client may encode it.
    Only the headers are parsed: the body, up to the size limit, is not read at all."""
    end = HEADERS_END.search(raw)
    try:
        headers = BytesHeaderParser(policy=email.policy.default).parsebytes(
            raw[: end.start()] if end else raw
        )
        subject = str(headers.get("subject", ""))
    except (ValueError, LookupError, TypeError, AttributeError, IndexError):
        return None  # an unreadable subject names no token
    found = SUBJECT_TOKEN.search(subject)
    return found.group(1) if found else None
