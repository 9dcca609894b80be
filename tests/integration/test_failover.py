"""Provider failover: two real SMTP relays; the first answers 421, traffic moves to the
second at once, the first rests after failing in a row, and takes traffic back once it
recovers. A permanent refusal is the message's own and never tried elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.channels.base import (
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.email.smtp import EmailChannel, SmtpOptions
from hub.channels.failover import FailoverChannel
from hub.domain import Channel, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import ok, person, settled, topic
from tests.peers.smtp import SmtpPeer

BUSY = "421 4.3.2 Service not available, try later"


@pytest.fixture
def relays() -> Iterator[tuple[SmtpPeer, SmtpPeer]]:
    with SmtpPeer() as first, SmtpPeer() as second:
        yield first, second


def options(peer: SmtpPeer) -> SmtpOptions:
    return SmtpOptions(
        _env_file=None, smtp_host=peer.host, smtp_port=peer.port, email_from="hub@example.com"
    )


def message(n: int, to: str = "ann@example.com") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=n, channel=Channel.EMAIL, key=f"hub-1-{n}", to=to, subject="Hi", text="Hello"
    )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_traffic_moves_to_the_second_relay_and_comes_back(
    relays: tuple[SmtpPeer, SmtpPeer],
) -> None:
    first, second = relays
    first.script("*", at="rcpt", reply=BUSY)
    clock = Clock()

    async def scenario() -> list[Any]:
        channel = FailoverChannel(
            [("first", EmailChannel(options(first))), ("second", EmailChannel(options(second)))],
            trip_after=2,
            rest=10,
            clock=clock,
        )
        outcomes: list[Any] = []
        try:
            for n in range(1, 5):
                outcomes.append(await channel.send(message(n)))
            outcomes.append(channel.health())
            first.clear()  # the first relay recovers
            first.script("nobody@example.com", at="rcpt", reply="550 5.1.1 No such user")
            clock.now += 11  # and its rest is over
            outcomes.append(await channel.send(message(5)))
            outcomes.append(channel.health())
            try:
                await channel.send(message(6, to="nobody@example.com"))
            except PermanentDeliveryError as exc:
                outcomes.append(exc)
        finally:
            await channel.aclose()
        return outcomes

    *sent, rested, back, healed, refused = asyncio.run(scenario())
    assert all(isinstance(r, Receipt) for r in sent)
    assert [r.provider for r in sent] == ["second"] * 4
    assert len(second.received) == 4
    assert rested == {
        "first": {"failures": 2, "resting": True},
        "second": {"failures": 0, "resting": False},
    }
    assert back.provider == "first"
    assert [m.rcpt_tos for m in first.received] == [("ann@example.com",)]
    assert healed["first"] == {"failures": 0, "resting": False}
    assert isinstance(refused, PermanentDeliveryError)  # the address's fault: not retried
    assert len(second.received) == 4


def test_when_every_relay_fails_the_delivery_stays_retryable(
    relays: tuple[SmtpPeer, SmtpPeer],
) -> None:
    first, second = relays
    first.script("*", at="rcpt", reply=BUSY)
    second.script("*", at="rcpt", reply="451 4.7.1 Greylisted")

    async def scenario() -> BaseException:
        channel = FailoverChannel(
            [("first", EmailChannel(options(first))), ("second", EmailChannel(options(second)))]
        )
        try:
            await channel.send(message(1))
        except RetryableDeliveryError as exc:
            return exc
        finally:
            await channel.aclose()
        raise AssertionError("sent although every relay refused")

    error = asyncio.run(scenario())
    assert "451" in str(error)


def test_hub_failover_setting_sends_through_the_backup_relay(
    database_url: str, relays: tuple[SmtpPeer, SmtpPeer]
) -> None:
    first, second = relays
    first.script("*", at="rcpt", reply=BUSY)
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        smtp_host=first.host,
        smtp_port=first.port,
        email_from="hub@example.com",
        failover={"email": [{"smtp_host": second.host, "smtp_port": second.port}]},
    )
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start(sweep=False)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            auth = make_key(runtime, "ops", Scope.ADMIN)
            topic(client, auth, "news")
            person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
            body = {"topic": "news", "content": {"": {"email_subject": "Hi", "email_text": "x"}}}
            accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
            (delivery,) = settled(client, auth, accepted["id"])["deliveries"]["items"]
    finally:
        workers.stop()
        runtime.close()
    assert (delivery["state"], delivery["provider"], delivery["attempts"]) == ("sent", "smtp:2", 1)
    assert [m.rcpt_tos for m in second.received] == [("ann@example.com",)]
    assert first.received == []


def test_a_failover_naming_no_channel_stops_start_up(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET, failover={"fax": [{"x": 1}]}
    )
    runtime = Runtime.build(settings)
    try:
        with pytest.raises(ValueError, match="'fax' is not a channel"):
            Workers(runtime)
    finally:
        runtime.close()
