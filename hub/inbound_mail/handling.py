"""What Hub does with one message for one of its mailboxes, the same whether it came over SMTP,
LMTP or an MTA's pipe: a report to the bounce mailbox goes through hub.services.bounces exactly
as POST /inbound/email/bounce does; a mail to the unsubscribe mailbox through
hub.services.unsubscribes exactly as the one-click POST does.

Blocking (it talks to the database): the listener runs it in a worker thread. The answer is
only ever "done" or "try later". Mail that is not a report, or a token that is forged or
expired, is done too: refusing it would send a bounce to a sender who may be forged
(backscatter), and nothing would get better by trying again. Only a failure that may pass
(the database away, locked, a deadlock) asks the sending MTA to keep the message and retry.
"""

from __future__ import annotations

import email
import email.policy
import enum
import logging
import re
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from hub.domain import ActorKind
from hub.inbound_mail.mailboxes import Kind, Recipient
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.services import bounces, unsubscribes
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.unsubscribes import BadLink, Done

log = logging.getLogger("hub.inbound_mail")
# "unsubscribe <token>", anywhere in the subject ("Re: Unsubscribe <token>" too). A token is
# URL-safe base64 and dots (itsdangerous); it never holds a space.
SUBJECT_TOKEN = re.compile(r"\bunsubscribe\s+([A-Za-z0-9_.-]{16,})", re.IGNORECASE)


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

    def deliver(self, raw: bytes, to: Recipient, *, peer: str) -> Answer:
        """Handle `raw` for one recipient; never raises."""
        try:
            if to.kind is Kind.BOUNCE:
                return self._bounce(raw, to, peer)
            return self._unsubscribe(raw, to, peer)
        except SQLAlchemyError as exc:
            log.warning(
                "inbound mail from %s to the %s mailbox: database error (%s), asked to retry",
                peer,
                to.kind.value,
                type(exc).__name__,
            )
            return Answer.TRY_LATER
        except Exception:
            # A fault of ours: keep the message with the sender (it retries) rather than lose it.
            log.exception("inbound mail from %s to the %s mailbox failed", peer, to.kind.value)
            return Answer.TRY_LATER

    def _bounce(self, raw: bytes, to: Recipient, peer: str) -> Answer:
        # As a mailbox delivery would, say where the message was delivered: a report that
        # quotes nothing of the original still names its delivery by the VERP address.
        stamped = b"X-Original-To: " + to.address.encode("ascii", "replace") + b"\r\n" + raw
        try:
            report = bounces.parse(stamped)
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

    def _unsubscribe(self, raw: bytes, to: Recipient, peer: str) -> Answer:
        tokens = [t for t in (to.detail, _subject_token(raw)) if t]
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
    """The token in `Subject: unsubscribe <token>`, decoded as a mail client may encode it."""
    try:
        message = email.message_from_bytes(raw, policy=email.policy.default)
        subject = str(message.get("subject", ""))
    except (ValueError, LookupError, TypeError, AttributeError, IndexError):
        return None  # an unreadable subject names no token
    found = SUBJECT_TOKEN.search(subject)
    return found.group(1) if found else None
