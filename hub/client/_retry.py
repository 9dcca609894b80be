"""When to try a request again, and after how long: one policy for the sync and async clients."""

from __future__ import annotations

import datetime as dt
import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

# Statuses that say "not now", whatever the request: nothing was done, or a proxy could not
# reach Hub. A 500 may have done half the work, so only a request safe to repeat retries it.
_ALWAYS = frozenset({429, 502, 503, 504})
# Errors raised before a byte of the request left: repeating cannot do anything twice.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times and for how long to retry.

    `retries` more attempts after the first, each after an exponential backoff with jitter
    (`backoff` seconds doubled per retry, at most `max_backoff`) or after the server's
    `Retry-After`; never once `max_elapsed` seconds would pass since the first attempt, and
    never waiting longer than `max_wait` for one `Retry-After`.
    """

    retries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    max_wait: float = 60.0
    max_elapsed: float = 60.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    jitter: Callable[[], float] = field(default=random.random, repr=False)

    def start(self, *, safe: bool, keyed: bool) -> Attempts:
        """The attempts of one call: `safe` when repeating it changes nothing more (GET, PUT,
        DELETE, PATCH, a send with an Idempotency-Key); `keyed` when it carries such a key."""
        return Attempts(self, safe=safe, keyed=keyed, started=self.clock())


class Attempts:
    """The state of one call's attempts: each answer or error gives the delay before the next
    attempt, or None for "stop here"."""

    def __init__(self, policy: RetryPolicy, *, safe: bool, keyed: bool, started: float) -> None:
        self.policy = policy
        self.safe = safe
        self.keyed = keyed
        self.started = started
        self.made = 1
        self.retry_after: float | None = None  # the last answer's, for RateLimited

    def after_response(self, response: httpx.Response) -> float | None:
        """None when the answer is final (a success, or an error not worth repeating)."""
        self.retry_after = parse_retry_after(response.headers.get("retry-after"))
        if not self._retryable(response):
            return None
        return self._next(self.retry_after)

    def after_error(self, exc: httpx.TransportError) -> float | None:
        """None when the error must reach the caller: out of attempts, or the request may have
        been acted on (a read timeout after sending) and is not safe to repeat."""
        if not (self.safe or isinstance(exc, _NOT_SENT)):
            return None
        return self._next(None)

    def _retryable(self, response: httpx.Response) -> bool:
        status = response.status_code
        if status in _ALWAYS:
            return True
        if status == 500:
            return self.safe
        # The first request with this Idempotency-Key is still running: ask again shortly and
        # get its answer replayed.
        return status == 409 and self.keyed and _in_progress(response)

    def _next(self, retry_after: float | None) -> float | None:
        policy = self.policy
        if self.made > policy.retries:
            return None
        if retry_after is not None:
            if retry_after > policy.max_wait:
                return None
            delay = retry_after
        else:
            ceiling = min(policy.max_backoff, policy.backoff * 2 ** (self.made - 1))
            # "Equal jitter": at least half the backoff, so clients that failed together
            # spread out but none of them hammers the server straight away.
            delay = ceiling / 2 + policy.jitter() * ceiling / 2
        if policy.clock() - self.started + delay > policy.max_elapsed:
            return None
        self.made += 1
        return delay


def _in_progress(response: httpx.Response) -> bool:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    code, message = str(error.get("code", "")), str(error.get("message", ""))
    return code == "idempotency_in_progress" or "still in progress" in message


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date; None when
    absent or unreadable (then the backoff decides)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=dt.UTC)
    current = now or dt.datetime.now(dt.UTC)
    return max(0.0, (when - current).total_seconds())
