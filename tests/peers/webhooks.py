"""A webhook receiver on 127.0.0.1 that verifies with the reference library and answers as told."""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import secrets
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

STATS_PATH = "/_peer/stats"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the peer answers on one path: a status and headers, after `delay` seconds; or
    nothing at all (`hang`) until the peer stops."""

    status: int = 204
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hang: bool = False


@dataclass(frozen=True, slots=True)
class Received:
    """One request, recorded when it arrives (before any scripted delay)."""

    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    verified: bool
    error: str | None  # why verification failed
    payload: Any  # the parsed JSON, when verified
    remote: tuple[str, int]  # the client's address and port: one per connection


class WebhookPeer:
    """Start with `with WebhookPeer() as peer:`; send to `peer.url("/hook")`, signed with
    `peer.secret`; script with `peer.answer(...)`; read `peer.verified` / `peer.rejected`."""

    def __init__(self, *, secret: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.secret = secret or "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        self.host = host
        self.port = port
        self._verifier = Webhook(self.secret)
        self._answers: dict[str, Answer] = {}
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None

    def url(self, path: str = "/hook") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def answer(
        self,
        path: str,
        *,
        status: int = 204,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        hang: bool = False,
    ) -> None:
        """Script `path`; unscripted paths answer 204 to verified requests."""
        self._answers[path] = Answer(status, dict(headers or {}), delay, hang)

    @property
    def received(self) -> list[Received]:
        with self._changed:
            return list(self._received)

    @property
    def verified(self) -> list[Received]:
        return [r for r in self.received if r.verified]

    @property
    def rejected(self) -> list[Received]:
        return [r for r in self.received if not r.verified]

    @property
    def connections(self) -> set[tuple[str, int]]:
        return {r.remote for r in self.received}

    def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Received]:
        """Block until `count` requests (verified or not) have arrived; raise if they do not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{len(self._received)} of {count} webhooks arrived")
                self._changed.wait(left)
            return list(self._received)

    def reset(self) -> None:
        with self._changed:
            self._received.clear()
        self._answers.clear()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == STATS_PATH:
            verified = len(self.verified)
            stats = {"verified": verified, "rejected": len(self._received) - verified}
            return web.json_response(stats | {"connections": len(self.connections)})
        body = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        verified, error, payload = True, None, None
        try:
            payload = self._verifier.verify(body, headers)
        except (WebhookVerificationError, ValueError) as exc:  # ValueError: not UTF-8 or JSON
            verified, error = False, f"{type(exc).__name__}: {exc}"
        peer = request.transport.get_extra_info("peername") if request.transport else None
        record = Received(
            request.path, headers, body, verified, error, payload, tuple(peer or ("?", 0))[:2]
        )
        with self._changed:
            self._received.append(record)
            self._changed.notify_all()
        if not verified:
            return web.Response(status=401, text=error)
        answer = self._answers.get(request.path, Answer())
        assert self._stopping is not None
        if answer.hang or answer.delay:
            with contextlib.suppress(TimeoutError):  # the delay ran out: answer now
                await asyncio.wait_for(self._stopping.wait(), None if answer.hang else answer.delay)
        return web.Response(status=answer.status, headers=dict(answer.headers))

    def start(self) -> WebhookPeer:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)
        if self._failure is not None:
            raise RuntimeError(f"webhook peer did not start: {self._failure}") from self._failure
        return self

    def _run(self, ready: threading.Event) -> None:
        loop: asyncio.AbstractEventLoop
        try:
            import uvloop  # twice the requests per second of asyncio's own loop

            loop = uvloop.new_event_loop()
        except ImportError:
            loop = asyncio.new_event_loop()
        self._loop = loop
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)

        async def serve() -> None:
            self._stopping = asyncio.Event()
            await runner.setup()
            await web.TCPSite(runner, self.host, self.port, backlog=1024).start()
            self.port = runner.addresses[0][1]

        try:
            loop.run_until_complete(serve())
        except BaseException as exc:
            self._failure = exc
            ready.set()
            loop.close()
            return
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())
        loop.close()

    def stop(self) -> None:
        loop, thread, stopping = self._loop, self._thread, self._stopping
        if loop is None or thread is None or stopping is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(stopping.set)  # releases hanging and delayed answers
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    def __enter__(self) -> WebhookPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def main() -> None:
    """Serve until stdin closes: `python -m tests.peers.webhooks --secret whsec_...` prints
    its base URL on the first line; GET /_peer/stats counts what arrived."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--secret")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with WebhookPeer(secret=args.secret, port=args.port) as peer:
        print(json.dumps({"url": peer.url(""), "secret": peer.secret}), flush=True)
        sys.stdin.read()


if __name__ == "__main__":
    main()
