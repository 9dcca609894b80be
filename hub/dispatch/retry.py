"""What becomes of a delivery once its provider answered: the retry policy, and nothing else.

Pure: no database and no clock of its own. Given the channel, the attempt, the adapter's
answer, the limits and `now`, `decide` says sent, retry at a time, wait out a channel pause,
give up, fail for good (suppressing the address when the provider says it is dead), or leave
the outcome unknown. `outcome_writer` applies the decision to the rows.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
from collections.abc import Callable
from dataclasses import dataclass

from hub.channels.base import (
    AmbiguousDeliveryError,
    DeliveryError,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.domain import Channel, DeliveryState, FailureReason, SuppressionReason

# A resend under the same key is safe where the receiver can drop the copy: the e-mail
# Message-ID and the webhook-id. Twilio takes no idempotency key, so an SMS or call whose
# outcome is unknown stays `unknown` rather than risk a second text or a second call.
RESENDABLE = frozenset({Channel.EMAIL, Channel.WEBHOOK})
MAX_BACKOFF = 3600.0


class Verdict(enum.StrEnum):
    SENT = "sent"
    RETRY = "retry"  # queued again until `at`; the attempt counts
    PARK = "park"  # the channel is paused: queued until the pause ends; the attempt does not count
    GIVE_UP = "give_up"  # transient failures outlasted the attempts: failed, and a dead letter
    FAIL = "fail"  # refused for good: failed, or bounced when the address is dead
    UNKNOWN = "unknown"  # no answer, and a resend could reach the person twice


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    state: DeliveryState
    reason: FailureReason | SuppressionReason | None = None  # the final state's reason
    at: dt.datetime | None = None  # when to try again (retry, park)
    ambiguous: bool = False  # the provider may have the message (a timeout after sending)
    suppress: SuppressionReason | None = None  # the address itself must not be used again

    @property
    def spent(self) -> bool:
        """Whether this attempt counts against the delivery's attempts."""
        return self.verdict is not Verdict.PARK

    @property
    def ended(self) -> bool:
        """Whether the message will not reach the person (an escalation chain moves on)."""
        return self.verdict in (Verdict.FAIL, Verdict.GIVE_UP)


SENT = Decision(Verdict.SENT, DeliveryState.SENT)


def backoff(
    attempts: int,
    retry_after: float | None,
    *,
    first: float = 10.0,
    uniform: Callable[[float, float], float] = random.uniform,
) -> float:
    """Seconds before the next attempt: `first`, doubling per attempt up to an hour, jittered;
    never sooner than the provider's Retry-After."""
    base = min(MAX_BACKOFF, first * 2 ** max(0, attempts - 1))
    jittered: float = base * uniform(0.8, 1.2)
    return max(retry_after or 0.0, jittered)


def decide(
    answer: Receipt | DeliveryError,
    *,
    channel: Channel,
    attempts: int,
    max_attempts: int,
    now: dt.datetime,
    first_retry: float = 10.0,
    paused_until: dt.datetime | None = None,
    uniform: Callable[[float, float], float] = random.uniform,
) -> Decision:
    """The decision for one answer. `attempts` includes the one just made.

    `paused_until`: the channel was paused; a delivery the provider refused only for being
    unavailable waits until then without spending its attempt.
    """
    if isinstance(answer, Receipt):
        return SENT
    down = isinstance(answer, RetryableDeliveryError) and answer.unavailable
    if paused_until is not None and down:
        return Decision(Verdict.PARK, DeliveryState.QUEUED, at=paused_until)
    ambiguous = isinstance(answer, AmbiguousDeliveryError)
    if not (isinstance(answer, RetryableDeliveryError) or (ambiguous and channel in RESENDABLE)):
        return _final(answer, ambiguous=ambiguous)
    if attempts >= max_attempts:
        return Decision(
            Verdict.GIVE_UP, DeliveryState.FAILED, FailureReason.GAVE_UP, ambiguous=ambiguous
        )
    retry_after = answer.retry_after if isinstance(answer, RetryableDeliveryError) else None
    delay = backoff(attempts, retry_after, first=first_retry, uniform=uniform)
    at = now + dt.timedelta(seconds=delay)
    return Decision(Verdict.RETRY, DeliveryState.QUEUED, at=at, ambiguous=ambiguous)


def _final(answer: DeliveryError, *, ambiguous: bool) -> Decision:
    """An answer not to be retried: unknown, a dead address, or this message refused."""
    if ambiguous:
        return Decision(
            Verdict.UNKNOWN, DeliveryState.UNKNOWN, FailureReason.NO_ANSWER, ambiguous=True
        )
    if isinstance(answer, PermanentDeliveryError) and answer.suppress is not None:
        dead = answer.suppress is SuppressionReason.HARD_BOUNCE
        state = DeliveryState.BOUNCED if dead else DeliveryState.FAILED
        return Decision(Verdict.FAIL, state, answer.suppress, suppress=answer.suppress)
    return Decision(Verdict.FAIL, DeliveryState.FAILED, FailureReason.REJECTED)
