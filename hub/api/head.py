"""Answer HEAD like GET without the body (RFC 9110 9.3.2), without listing HEAD in OpenAPI."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        # Marked, for the few routes that must know (a HEAD on a tracked link is a machine's).
        await self.app({**scope, "method": "GET", "hub.head": True}, receive, headers_only)
