"""hub.client's retry policy and error mapping, over httpx.MockTransport (no sockets): which
answers are retried, how long it waits, that a send keeps its key, and when it gives up."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from typing import Any

import httpx
import pytest

from hub.client import (
    Conflict,
    Hub,
    NetworkError,
    PermissionDenied,
    RateLimited,
    RetryPolicy,
    ServerError,
    ValidationError,
)
from hub.client._calls import Call
from hub.client._retry import parse_retry_after

ACCEPTED = {
    "id": 7,
    "state": "accepted",
    "topic": "invoices",
    "created_at": "2026-01-01T00:00:00Z",
    "send_at": None,
}
CONTACT = {
    "external_id": "c-1",
    "kind": "client",
    "name": None,
    "email": None,
    "phone": None,
    "webhook_url": None,
    "locale": None,
    "timezone": "UTC",
    "attributes": {},
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}


class Script:
    """Answers in turn (the last one repeats); records every request and the waits."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": None}}
    return httpx.Response(status, json=body, headers=headers)


def hub(script: Script, policy: RetryPolicy | None = None) -> Hub:
    # Tiny backoffs: the tests count attempts, not seconds.
    policy = policy or RetryPolicy(retries=3, backoff=0.001, max_backoff=0.002)
    return Hub("http://hub.test", "hub_key", retries=policy, transport=httpx.MockTransport(script))


def test_a_send_is_retried_on_503_with_the_same_idempotency_key() -> None:
    script = Script(
        error(503, "unavailable", "busy", **{"Retry-After": "0"}),
        httpx.ConnectError("refused"),
        httpx.Response(202, json=ACCEPTED),
    )
    accepted = hub(script).notify("invoices", recipients=["c-1"], template="t")
    assert accepted.id == 7
    keys = {r.headers["Idempotency-Key"] for r in script.requests}
    assert len(script.requests) == 3
    assert len(keys) == 1
    assert json.loads(script.requests[0].content) == json.loads(script.requests[2].content)


def test_each_send_gets_its_own_key_unless_given() -> None:
    script = Script(httpx.Response(202, json=ACCEPTED))
    client = hub(script)
    client.notify("invoices", template="t")
    client.notify("invoices", template="t")
    client.notify("invoices", template="t", idempotency_key="mine-1")
    keys = [r.headers["Idempotency-Key"] for r in script.requests]
    assert keys[0] != keys[1]
    assert keys[2] == "mine-1"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (error(400, "bad_request", "no"), None),
        (error(403, "forbidden", "scope"), PermissionDenied),
        (error(409, "conflict", "a required topic cannot be unsubscribed"), Conflict),
        (error(422, "invalid_request", "topic: no topic"), ValidationError),
    ],
)
def test_other_4xx_are_never_retried(answer: httpx.Response, kind: type[Exception] | None) -> None:
    script = Script(answer)
    with pytest.raises(kind or Exception) as raised:
        hub(script).notify("invoices", template="t")
    assert len(script.requests) == 1
    assert getattr(raised.value, "status", None) == answer.status_code


def test_409_of_a_send_still_running_is_asked_again() -> None:
    running = error(409, "conflict", "a request with this Idempotency-Key is still in progress")
    script = Script(running, httpx.Response(202, json=ACCEPTED))
    assert hub(script).notify("invoices", template="t").id == 7
    assert len(script.requests) == 2


def test_500_is_retried_only_when_repeating_is_safe() -> None:
    script = Script(error(500, "internal_error", "oops"), httpx.Response(200, json=CONTACT))
    assert hub(script).get_contact("c-1").external_id == "c-1"  # a GET
    assert len(script.requests) == 2


def test_gives_up_after_the_attempts_allowed() -> None:
    script = Script(error(502, "bad_gateway", "proxy"))
    with pytest.raises(ServerError) as raised:
        hub(script, RetryPolicy(retries=2, backoff=0.001)).get_contact("c-1")
    assert len(script.requests) == 3
    assert raised.value.status == 502


def test_a_retry_after_beyond_max_wait_is_handed_to_the_caller() -> None:
    script = Script(error(429, "too_many_requests", "slow down", **{"Retry-After": "120"}))
    with pytest.raises(RateLimited) as raised:
        hub(script, RetryPolicy(max_wait=30)).get_contact("c-1")
    assert len(script.requests) == 1
    assert raised.value.retry_after == 120


def test_total_time_bounds_the_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [0.0]
    script = Script(error(503, "unavailable", "busy", **{"Retry-After": "4"}))
    policy = RetryPolicy(retries=10, max_elapsed=10, clock=lambda: now[0])
    client = hub(script, policy)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    monkeypatch.setattr("hub.client._sync.time.sleep", sleep)
    with pytest.raises(ServerError):
        client.get_contact("c-1")
    assert sleeps == [4, 4]  # a third wait would end past 10 s
    assert len(script.requests) == 3


def test_a_read_timeout_is_retried_only_for_a_safe_call() -> None:
    timeout = httpx.ReadTimeout("slow")
    script = Script(timeout, httpx.Response(200, json=CONTACT))
    assert hub(script).get_contact("c-1").external_id == "c-1"
    refused = Script(timeout)
    unsafe = hub(refused)
    with pytest.raises(NetworkError) as raised:
        unsafe.run(_post_without_key())
    assert len(refused.requests) == 1
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


def _post_without_key() -> Call[Any]:
    return Call("POST", "/v1/something", lambda body: body, safe=False)


def test_backoff_grows_with_jitter_within_its_bounds() -> None:
    draws = iter([0.0, 1.0, 0.5, 1.0])
    policy = RetryPolicy(retries=4, backoff=1, max_backoff=3, jitter=lambda: next(draws))
    attempts = policy.start(safe=True, keyed=False)
    failed = httpx.Response(503)
    delays = [attempts.after_response(failed) for _ in range(5)]
    # half the ceiling plus jitter times half: ceilings 1, 2, 3 (capped), 3
    assert delays == [0.5, 2.0, 2.25, 3.0, None]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        (None, None),
        ("soon", None),
        ("-3", None),
    ],
)
def test_retry_after_in_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_as_an_http_date() -> None:
    now = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)
    later = email.utils.format_datetime(now + dt.timedelta(seconds=30), usegmt=True)
    earlier = email.utils.format_datetime(now - dt.timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(later, now=now) == 30
    assert parse_retry_after(earlier, now=now) == 0
