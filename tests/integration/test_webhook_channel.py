"""The webhook channel against a real receiver on loopback that verifies with `standardwebhooks`."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from hub.channels import signing
from hub.channels.base import (
    AmbiguousDeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    RetryableDeliveryError,
)
from hub.channels.http_transport import AiohttpTransport, ForbiddenAddressError
from hub.channels.netguard import IPAddress, is_forbidden_address
from hub.channels.webhook import WebhookChannel, WebhookOptions
from hub.domain import Channel, SuppressionReason
from tests.peers.webhooks import WebhookPeer

pytestmark = pytest.mark.anyio
NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV


class StaticResolver(AbstractResolver):
    """A DNS stand-in: fixed answers per name, a failure for any other; counts look-ups."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self.answers = answers  # per name, one answer per successive look-up (the last repeats)
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: Name or service not known")
        sequence = self.answers[host]
        answer = sequence[min(self.calls.count(host), len(sequence)) - 1]
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=NUMERIC,
            )
            for address in answer
        ]

    async def close(self) -> None:
        pass


@pytest.fixture
def peer() -> Iterator[WebhookPeer]:
    with WebhookPeer() as running:
        yield running


@pytest.fixture
def outside(peer: WebhookPeer) -> Iterator[WebhookPeer]:
    """A second receiver on 127.0.0.2 that the tests' policy pretends is on the internet."""
    with WebhookPeer(host="127.0.0.2", secret=peer.secret) as running:
        yield running


def pretend_outside_is_public(address: IPAddress) -> bool:
    return address != ipaddress.ip_address("127.0.0.2") and is_forbidden_address(address)


def message(to: str, *, key: str = "msg_2Yb8", **extra: Any) -> OutgoingMessage:
    body = json.dumps({"type": "invoice.paid", "data": {"id": 42}}).encode()
    return OutgoingMessage(
        delivery_id=1, channel=Channel.WEBHOOK, key=key, to=to, body=body, **extra
    )


@asynccontextmanager
async def channel(
    secret: str, *, allow_private: bool = True, timeout: float = 5, **kwargs: Any
) -> AsyncIterator[WebhookChannel]:
    options = WebhookOptions(
        webhook_secret=SecretStr(secret),
        webhook_allow_private=allow_private,
        webhook_timeout=timeout,
        **{f"webhook_{k}": v for k, v in kwargs.items() if k != "transport"},
    )
    sender = WebhookChannel(options, transport=kwargs.get("transport"))
    try:
        yield sender
    finally:
        await sender.aclose()


async def test_signed_post_verifies_with_the_reference_library(peer: WebhookPeer) -> None:
    forged = {"webhook-signature": "v1,Zm9yZ2Vk", "content-type": "text/plain", "x-tenant": "7"}
    async with channel(peer.secret) as sender:
        receipt = await sender.send(message(peer.url("/hook"), headers=forged))
    assert receipt.provider_id == "204"
    [got] = peer.received
    assert got.verified, got.error
    assert got.payload == {"type": "invoice.paid", "data": {"id": 42}}
    assert got.headers["webhook-id"] == "msg_2Yb8"
    assert got.headers["content-type"] == "application/json"
    assert got.headers["user-agent"] == "Hub-Webhooks/1"
    assert got.headers["x-tenant"] == "7"  # extra headers pass; reserved ones cannot be forged


async def test_webhook_id_is_stable_across_sends(peer: WebhookPeer) -> None:
    peer.answer("/hook", status=200, headers={"set-cookie": "session=abc; Path=/"})
    async with channel(peer.secret) as sender:
        await sender.send(message(peer.url(), key="msg_same"))
        await sender.send(message(peer.url(), key="msg_same"))
    first, second = peer.verified
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == "msg_same"
    assert "cookie" not in second.headers  # nothing an endpoint sets rides along later


@pytest.mark.parametrize("target", ["ftp://example.com/hook", "hook", "http://[::1/hook"])
async def test_unusable_urls_are_permanent(peer: WebhookPeer, target: str) -> None:
    async with channel(peer.secret, allow_private=False) as sender:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(message(target))
    assert caught.value.code == "invalid_url"


async def test_a_wrong_secret_fails_verification(peer: WebhookPeer) -> None:
    other = WebhookPeer().secret
    async with channel(other) as sender:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(message(peer.url()))
    assert caught.value.code == "401"
    [got] = peer.rejected
    assert got.error is not None
    assert "signature" in got.error.lower()


PERMANENT, RETRYABLE = PermanentDeliveryError, RetryableDeliveryError
IN_A_MINUTE = "<an HTTP-date 60 s from now>"  # written when the test runs, not when collected


@pytest.mark.parametrize(
    ("answer", "error", "code", "retry_after"),
    [
        ({"status": 410}, PERMANENT, "410", None),
        ({"status": 301, "headers": {"location": "http://127.0.0.1:9/"}}, PERMANENT, "301", None),
        ({"status": 400}, PERMANENT, "400", None),
        ({"status": 404}, PERMANENT, "404", None),
        ({"status": 500}, RETRYABLE, "500", None),
        ({"status": 503, "headers": {"retry-after": IN_A_MINUTE}}, RETRYABLE, "503", 60),
        ({"status": 429, "headers": {"retry-after": "7"}}, RETRYABLE, "429", 7),
        ({"status": 408}, RETRYABLE, "408", None),
        ({"status": 425}, RETRYABLE, "425", None),
    ],
)
async def test_status_classification(
    peer: WebhookPeer,
    answer: dict[str, Any],
    error: type[Exception],
    code: str,
    retry_after: float | None,
) -> None:
    if answer.get("headers", {}).get("retry-after") == IN_A_MINUTE:
        when = datetime.now(UTC) + timedelta(seconds=60)
        answer = {**answer, "headers": {"retry-after": format_datetime(when, usegmt=True)}}
    peer.answer("/scripted", **answer)
    async with channel(peer.secret) as sender:
        with pytest.raises(error) as caught:
            await sender.send(message(peer.url("/scripted")))
    assert getattr(caught.value, "code", None) == code
    if isinstance(caught.value, PermanentDeliveryError):
        gone = SuppressionReason.ENDPOINT_GONE if code == "410" else None
        assert caught.value.suppress is gone  # only 410 says "never again" about the URL
    if isinstance(caught.value, RetryableDeliveryError):
        if retry_after is None:
            assert caught.value.retry_after is None
        else:
            assert caught.value.retry_after == pytest.approx(retry_after, abs=2)
    assert len(peer.verified) == 1  # one request; a redirect is not followed


async def test_redirect_says_it_was_not_followed(peer: WebhookPeer) -> None:
    peer.answer("/moved", status=308, headers={"location": peer.url("/new")})
    async with channel(peer.secret) as sender:
        with pytest.raises(PermanentDeliveryError, match="not followed"):
            await sender.send(message(peer.url("/moved")))
    assert [r.path for r in peer.received] == ["/moved"]


async def test_a_timeout_after_sending_is_ambiguous(peer: WebhookPeer) -> None:
    peer.answer("/hang", hang=True)
    async with channel(peer.secret, timeout=0.5) as sender:
        with pytest.raises(AmbiguousDeliveryError) as caught:
            await sender.send(message(peer.url("/hang")))
    assert caught.value.code == "timeout"
    assert len(peer.verified) == 1  # it arrived: the resend will carry the same webhook-id


async def test_a_refused_connection_is_retryable(peer: WebhookPeer) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    async with channel(peer.secret) as sender:
        with pytest.raises(RetryableDeliveryError) as caught:
            await sender.send(message(f"http://127.0.0.1:{closed_port}/hook"))
    assert caught.value.code == "network"


async def test_a_dns_failure_is_retryable(peer: WebhookPeer) -> None:
    transport = AiohttpTransport(resolver=StaticResolver({}))
    async with channel(peer.secret, allow_private=False, transport=transport) as sender:
        with pytest.raises(RetryableDeliveryError) as caught:
            await sender.send(message("http://nowhere.example.com/hook"))
    assert caught.value.code == "network"
    assert "nowhere.example.com" in caught.value.message


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/hook", "http://localhost:{port}/hook", "http://2130706433:{port}/"],
)
async def test_loopback_literals_and_names_are_refused(peer: WebhookPeer, target: str) -> None:
    async with channel(peer.secret, allow_private=False) as sender:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(message(target.format(port=peer.port)))
    assert caught.value.code == "forbidden_address"
    assert peer.received == []


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost", "LocalHost"])
async def test_the_transport_refuses_on_its_own(peer: WebhookPeer, host: str) -> None:
    # Without the channel's early check: literals are vetted by the transport, names by the
    # resolver (here the system's, which reads /etc/hosts).
    async with channel(peer.secret, allow_private=False) as sender:
        with pytest.raises(ForbiddenAddressError):
            await sender._client.post(f"http://{host}:{peer.port}/hook", content=b"{}")
    assert peer.received == []


@pytest.mark.parametrize(
    "answer", [["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::1"], ["10.0.0.1"]]
)
async def test_names_resolving_to_private_addresses_are_refused(
    peer: WebhookPeer, answer: list[str]
) -> None:
    resolver = StaticResolver({"hooks.example.com": [answer]})
    transport = AiohttpTransport(resolver=resolver, connect_timeout=1)
    async with channel(peer.secret, allow_private=False, transport=transport) as sender:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(message(f"http://hooks.example.com:{peer.port}/hook"))
    assert caught.value.code == "forbidden_address"
    assert resolver.calls == ["hooks.example.com"]
    assert peer.received == []


async def test_a_public_name_redirecting_to_loopback_reaches_nothing(
    peer: WebhookPeer, outside: WebhookPeer
) -> None:
    outside.answer("/hook", status=302, headers={"location": peer.url("/internal")})
    resolver = StaticResolver({"public.example.com": [["127.0.0.2"]]})
    transport = AiohttpTransport(resolver=resolver, forbidden=pretend_outside_is_public)
    async with channel(peer.secret, allow_private=False, transport=transport) as sender:
        with pytest.raises(PermanentDeliveryError) as caught:
            await sender.send(message(f"http://public.example.com:{outside.port}/hook"))
    assert caught.value.code == "302"
    assert len(outside.received) == 1
    assert peer.received == []


async def test_the_vetted_answer_is_the_one_connected_to(
    peer: WebhookPeer, outside: WebhookPeer
) -> None:
    # DNS rebinding: the first answer is "public", later ones loopback. One look-up serves
    # both the check and the connect, so the loopback answer is never used.
    resolver = StaticResolver({"rebind.example.com": [["127.0.0.2"], ["127.0.0.1"]]})
    transport = AiohttpTransport(resolver=resolver, forbidden=pretend_outside_is_public)
    async with channel(outside.secret, allow_private=False, transport=transport) as sender:
        await sender.send(message(f"http://rebind.example.com:{outside.port}/hook"))
    assert resolver.calls == ["rebind.example.com"]
    assert len(outside.verified) == 1
    assert peer.received == []


async def test_concurrent_sends_share_a_bounded_pool(peer: WebhookPeer) -> None:
    async with channel(peer.secret, max_connections=8) as sender:
        receipts = await asyncio.gather(
            *(sender.send(message(peer.url(), key=f"msg_{n}")) for n in range(500))
        )
    assert {r.provider_id for r in receipts} == {"204"}
    assert len({r.headers["webhook-id"] for r in peer.verified}) == 500
    assert 1 <= len(peer.connections) <= 8


def test_sign_matches_the_reference_library() -> None:
    secret = WebhookPeer().secret
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    expected = Webhook(secret).sign("msg_1", when, '{"a":1}')
    key = signing.parse_secret(secret)
    assert signing.sign(key, "msg_1", int(when.timestamp()), b'{"a":1}') == expected
    assert signing.parse_secret(secret.removeprefix("whsec_").rstrip("=")) == key  # unpadded


@pytest.mark.parametrize("secret", ["whsec_", "whsec_c2hvcnQ=", "whsec_not*base64", "plain"])
def test_unusable_secrets_are_refused_at_start_up(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        WebhookOptions(webhook_secret=SecretStr(secret))


def test_the_channel_will_not_start_unsigned() -> None:
    with pytest.raises(ValueError, match="HUB_WEBHOOK_SECRET"):
        WebhookChannel(WebhookOptions(webhook_secret=None))
