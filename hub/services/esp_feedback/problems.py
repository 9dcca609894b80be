"""Why a provider's request was refused, as the route answers it: the field or header at fault
and the words, never the secret that failed to match."""

from __future__ import annotations


class FeedbackProblem(Exception):
    """A request Hub cannot act on; `status` is the HTTP answer the provider gets."""

    status = 400

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class Malformed(FeedbackProblem):
    """Not the provider's format: 422 naming the field, as every invalid input to the API."""

    status = 422


class Refused(FeedbackProblem):
    """Unsigned, badly signed, stale, from a topic not configured, or not configured at all:
    403, and nothing was changed."""

    status = 403


class Unavailable(FeedbackProblem):
    """Something Hub needs is down for now (the certificate host, the database): 503, so the
    provider retries later."""

    status = 503
