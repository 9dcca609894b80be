"""hub.client's retries against a real HTTP server on 127.0.0.1 that answers 503 with
`Retry-After` first: the client waits as told, resends the same request with the same
Idempotency-Key, and reads the 202 that follows (sync and async)."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hub.client import AsyncHub, Hub, RetryPolicy, ServerError

ACCEPTED = {
    "id": 41,
    "state": "accepted",
    "topic": "invoices",
    "created_at": "2026-01-01T00:00:00Z",
    "send_at": None,
}


@dataclass
class Seen:
    at: float
    key: str | None
    body: bytes


@dataclass
class Busy:
    """Answers the first `refusals` POSTs 503 with `retry_after`, then 202."""

    refusals: int
    retry_after: str
    seen: list[Seen] = field(default_factory=list)


@pytest.fixture
def busy() -> Iterator[tuple[str, Busy]]:
    state = Busy(refusals=1, retry_after="1")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.seen.append(Seen(time.monotonic(), self.headers.get("Idempotency-Key"), body))
            if len(state.seen) <= state.refusals:
                answer = {"error": {"code": "unavailable", "message": "busy", "details": None}}
                self._send(503, answer, {"Retry-After": state.retry_after})
            else:
                self._send(202, ACCEPTED, {})

        def _send(self, status: int, body: object, headers: dict[str, str]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet test output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_503_with_retry_after_then_202(busy: tuple[str, Busy]) -> None:
    url, state = busy
    with Hub(url, "hub_key") as hub:
        accepted = hub.notify("invoices", recipients=["c-1"], template="invoice-ready")
    assert accepted.id == 41
    first, second = state.seen
    assert second.at - first.at >= 0.95  # waited the second it was told
    assert first.key is not None
    assert first.key == second.key
    assert first.body == second.body


def test_retry_after_as_an_http_date(busy: tuple[str, Busy]) -> None:
    url, state = busy
    # Whole seconds only, as HTTP dates have: 2 s ahead waits between 1 and 2 s.
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=2)
    state.retry_after = email.utils.format_datetime(when, usegmt=True)
    with Hub(url, "hub_key") as hub:
        assert hub.notify("invoices", template="invoice-ready").id == 41
    first, second = state.seen
    assert 0.9 <= second.at - first.at <= 2.5


def test_gives_up_when_the_server_stays_busy(busy: tuple[str, Busy]) -> None:
    url, state = busy
    state.refusals, state.retry_after = 100, "0"
    hub = Hub(url, "hub_key", retries=RetryPolicy(retries=2))
    with hub, pytest.raises(ServerError) as raised:
        hub.notify("invoices", template="invoice-ready")
    assert raised.value.status == 503
    assert raised.value.message == "busy"
    assert len(state.seen) == 3
    assert len({seen.key for seen in state.seen}) == 1


def test_async_hub_retries_the_same_way(busy: tuple[str, Busy]) -> None:
    url, state = busy

    async def main() -> int:
        async with AsyncHub(url, "hub_key") as hub:
            return (await hub.notify("invoices", template="invoice-ready")).id

    assert asyncio.run(main()) == 41
    first, second = state.seen
    assert second.at - first.at >= 0.95
    assert first.key == second.key
