"""The webhook channel: a signed Standard Webhooks POST to a vetted public address."""

from __future__ import annotations

import email.utils
import functools
import http.cookiejar
import time
from collections.abc import Mapping
from datetime import UTC
from typing import ClassVar

import httpx
from pydantic import SecretStr, field_validator

from hub.channels import signing, webhook_urls
from hub.channels.base import (
    AmbiguousDeliveryError,
    ChannelAdapter,
    ChannelOptions,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.http_transport import AiohttpTransport, ForbiddenAddressError
from hub.domain import Channel, SuppressionReason

RETRY_STATUSES = frozenset({408, 425, 429})
GONE = 410
# Read at most this much of an answer: only the status counts, and reading the body to its
# end is what lets the connection go back to the pool.
MAX_ANSWER_BYTES = 64 * 1024
# Headers that describe the connection or the framing, which the transport owns.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


class WebhookOptions(ChannelOptions):
    """`HUB_WEBHOOK_*` variables.

    `webhook_secret` signs every request (`whsec_<base64>`, the form receivers paste into the
    reference verifiers). When it is None the composition root must fill it (from the hub's
    secret store) before building the channel; the channel refuses to start without one, as an
    unsigned webhook is one nobody can trust.
    """

    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = False  # loopback/private targets: tests and on-premise only
    webhook_timeout: float = 10
    webhook_max_connections: int = 100
    webhook_user_agent: str = "Hub-Webhooks/1"

    @field_validator("webhook_secret")
    @classmethod
    def _parseable(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            signing.parse_secret(value.get_secret_value())
        return value

    @property
    def configured(self) -> bool:
        """Always: a webhook needs no provider account, only the endpoint's URL."""
        return True


class WebhookChannel:
    """POSTs `message.body` (JSON) to `message.to`, signed; see `classify` for the outcomes."""

    name: ClassVar[str] = "webhook"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.WEBHOOK})
    options_model: ClassVar[type[ChannelOptions]] = WebhookOptions

    def __init__(
        self, options: WebhookOptions, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        """`transport` defaults to a vetted aiohttp transport built from `options`; tests pass
        one with a fake resolver.

        Raises:
            ValueError: no `webhook_secret`.
        """
        if options.webhook_secret is None:
            raise ValueError(
                "webhook_secret is not set: set HUB_WEBHOOK_SECRET (whsec_...) or let the "
                "composition root fill it before building the webhook channel"
            )
        self._secret = signing.parse_secret(options.webhook_secret.get_secret_value())
        self._allow_private = options.webhook_allow_private
        timeout = options.webhook_timeout
        transport = transport or AiohttpTransport(
            allow_private=options.webhook_allow_private,
            max_connections=options.webhook_max_connections,
            connect_timeout=min(timeout, 5.0),
            total_timeout=timeout,
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": options.webhook_user_agent},
        )
        # An endpoint's cookies must not ride along on later deliveries: each request is
        # exactly what the message says, whoever answered before.
        self._client.cookies.jar.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    @classmethod
    def from_options(cls, options: WebhookOptions) -> ChannelAdapter:
        return cls(options)

    async def send(self, message: OutgoingMessage) -> Receipt:
        """POST the message once, signed with the channel's secret; see `post`."""
        if message.body is None:
            raise PermanentDeliveryError("a webhook message needs a body", code="no_body")
        return await self.post(
            message.to, message.body, msg_id=message.key, headers=message.headers
        )

    async def post(
        self,
        to: str,
        body: bytes,
        *,
        msg_id: str,
        headers: Mapping[str, str] | None = None,
        secret: bytes | None = None,
    ) -> Receipt:
        """POST `body` to `to` once, signed with `secret` (the channel's own by default), and
        classify the answer. The hub's event relay signs with each endpoint's secret.

        Raises:
            RetryableDeliveryError: 408, 425, 429, 5xx (with Retry-After when given), a
                refused connection, a DNS failure, a timeout.
            PermanentDeliveryError: 3xx (never followed), 410 (code "410", suppressing the
                endpoint: ENDPOINT_GONE), other 4xx, a forbidden address (code
                "forbidden_address"), an unusable URL (code "invalid_url": not http(s),
                credentials, a bad port, a host IDNA refuses; see `webhook_urls.parse`).
        """
        try:
            # The reading the URL was saved with: the host checked here is the host sent to.
            target = webhook_urls.parse(to)
            url = _parse_url(target.url)
        except (webhook_urls.InvalidWebhookUrl, httpx.InvalidURL) as exc:
            raise PermanentDeliveryError(f"unusable URL: {exc}", code="invalid_url") from exc
        if not self._allow_private and target.forbidden:
            # Refused before any lookup; names are vetted again, per address, at connect time.
            raise PermanentDeliveryError(
                f"{target.host} is not a public address; webhooks may not reach it",
                code="forbidden_address",
            )
        sent = {k: v for k, v in (headers or {}).items() if k.lower() not in _TRANSPORT_HEADERS}
        # Set last, so a template's headers can never replace the signature or content type.
        sent["content-type"] = "application/json"
        sent |= signing.signature_headers(secret or self._secret, msg_id=msg_id, body=body)
        try:
            async with self._client.stream("POST", url, content=body, headers=sent) as response:
                await _drain(response)
        except ForbiddenAddressError as exc:
            raise PermanentDeliveryError(str(exc), code="forbidden_address") from exc
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise PermanentDeliveryError(f"unusable URL: {exc}", code="invalid_url") from exc
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            # The request left (or was leaving): it may have arrived. Resent under the same
            # webhook-id, by which receivers drop a copy, and flagged so the log says so.
            raise AmbiguousDeliveryError(f"timed out: {exc}", code="timeout") from exc
        except httpx.TimeoutException as exc:  # connecting, or waiting for a pooled connection
            raise RetryableDeliveryError(f"timed out: {exc}", code="timeout") from exc
        except httpx.TransportError as exc:  # refused, DNS failure, reset, malformed answer
            raise RetryableDeliveryError(f"{type(exc).__name__}: {exc}", code="network") from exc
        return classify(response)

    async def aclose(self) -> None:
        await self._client.aclose()  # closes the transport, and with it the aiohttp session


@functools.lru_cache(maxsize=4096)
def _parse_url(to: str) -> httpx.URL:
    # Parsed once per endpoint (a few thousand at most), and by the same parser that sends,
    # so the host checked here is the host httpx connects to.
    return httpx.URL(to)


async def _drain(response: httpx.Response) -> None:
    """Read the answer to its end (up to a limit) so the connection can be reused."""
    read = 0
    try:
        async for chunk in response.aiter_raw():
            read += len(chunk)
            if read > MAX_ANSWER_BYTES:
                return  # closing a half-read answer drops its connection; the status stands
    except httpx.TransportError:
        return  # the status line already arrived and is the receiver's answer; the body is not


def classify(response: httpx.Response) -> Receipt:
    """Turn the endpoint's status into a receipt or the delivery error it means.

    Raises:
        RetryableDeliveryError: 408, 425, 429, 5xx.
        PermanentDeliveryError: 3xx, 410, other 4xx, anything else.
    """
    status = response.status_code
    code = str(status)
    if 200 <= status < 300:
        return Receipt(provider_id=code)
    if 300 <= status < 400:
        location = response.headers.get("location", "nowhere")
        raise PermanentDeliveryError(
            f"endpoint answered {status} to {location}; redirects are not followed, as they "
            "could lead to an address inside our network; save the new URL instead",
            code=code,
        )
    if status == GONE:
        # Standard Webhooks: 410 means "stop sending here"; the URL goes on the suppression
        # list like a hard-bounced address, so no later message is sent to it.
        raise PermanentDeliveryError(
            "endpoint is gone (410)", code=code, suppress=SuppressionReason.ENDPOINT_GONE
        )
    if status in RETRY_STATUSES or 500 <= status < 600:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise RetryableDeliveryError(
            f"endpoint answered {status}", code=code, retry_after=retry_after
        )
    raise PermanentDeliveryError(f"endpoint refused the webhook with {status}", code=code)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no zone said
        when = when.replace(tzinfo=UTC)
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)
