"""Each request gets an id, a log line and its metrics, named by its route, never its path.

The path of a self-service page carries the person's signed link, so the log and the
metrics use the route's template (`/preferences/{token}`). A caller's `X-Request-ID` is kept
when it looks like an id, else one is made; the answer carries it back, and every log line
written while the request runs names it.
"""

from __future__ import annotations

import logging
import os
import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hub import logs
from hub.metrics import HTTP_REQUESTS, HTTP_SECONDS

log = logging.getLogger("hub.http")
_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


class Observe:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _ID.fullmatch(given) else os.urandom(16).hex()
        token = logs.request_id.set(request_id)
        started = time.perf_counter()
        status = 500  # what the server answers if the app raises before it starts a response

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            HTTP_REQUESTS.labels(route, str(status)).inc()
            HTTP_SECONDS.labels(route).observe(seconds)
            log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                route,
                status,
                seconds * 1000,
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(seconds * 1000, 1),
                },
            )
            logs.request_id.reset(token)
