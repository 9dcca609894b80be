"""SmsChannel and VoiceChannel through the real twilio library against the loopback peer."""

from __future__ import annotations

import asyncio
import json
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import aiohttp
import httpx
import pytest
from pydantic import ValidationError
from twilio.base.exceptions import TwilioRestException

from hub.channels.base import (
    AmbiguousDeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.twilio import (
    SmsChannel,
    TwilioOptions,
    VoiceChannel,
    retry_after_seconds,
    say_language,
    translate,
)
from hub.domain import Channel, SuppressionReason
from tests.peers import twilio as peers
from tests.peers.twilio import TwilioPeer

SENDER = "+15005550006"
CALLBACK = "https://hub.example.com/v1/callbacks/twilio"


@pytest.fixture
def peer() -> Iterator[TwilioPeer]:
    with TwilioPeer() as running:
        yield running
        assert running.violations == [], "the hub sent what Twilio's spec does not allow"


def options(peer: TwilioPeer, **overrides: Any) -> TwilioOptions:
    values: dict[str, Any] = {
        "twilio_account_sid": peer.account_sid,
        "twilio_auth_token": peer.auth_token,
        "twilio_from": SENDER,
        "twilio_base_url": peer.url,
        "twilio_rate_per_second": 1000,
        "twilio_timeout": 5,
    }
    return TwilioOptions(_env_file=None, **(values | overrides))


def message(to: str, text: str | None = "Hello", **fields: Any) -> OutgoingMessage:
    channel = fields.pop("channel", Channel.SMS)
    return OutgoingMessage(delivery_id=1, channel=channel, key="k1", to=to, text=text, **fields)


def deliver(
    channel_class: type[SmsChannel | VoiceChannel], opts: TwilioOptions, *messages: OutgoingMessage
) -> list[Receipt | BaseException]:
    async def main() -> list[Receipt | BaseException]:
        channel = channel_class.from_options(opts)
        try:
            return await asyncio.gather(
                *(channel.send(m) for m in messages), return_exceptions=True
            )
        finally:
            await channel.aclose()

    return asyncio.run(main())


def test_an_sms_arrives_with_its_text_sender_and_status_callback(peer: TwilioPeer) -> None:
    text = "Ваш заказ готов к выдаче"
    [receipt] = deliver(
        SmsChannel, options(peer), message("+79161234567", text, callback_url=CALLBACK)
    )
    [got] = peer.wait_for(1)
    assert isinstance(receipt, Receipt)
    assert receipt.provider_id == got.sid
    assert got.sid.startswith("SM")
    assert len(got.sid) == 34
    assert got.form == {
        "To": "+79161234567",
        "From": SENDER,
        "Body": text,
        "StatusCallback": CALLBACK,
    }
    assert receipt.detail == {"status": "queued"}


def test_an_sms_without_a_callback_url_sends_none(peer: TwilioPeer) -> None:
    deliver(SmsChannel, options(peer), message("+15551230001"))
    assert "StatusCallback" not in peer.wait_for(1)[0].form


def test_a_call_says_the_text_in_the_contacts_language(peer: TwilioPeer) -> None:
    text = "Здравствуйте! Ваша запись завтра в 10:00."
    call = message("+79161234567", text, channel=Channel.VOICE, locale="ru", callback_url=CALLBACK)
    [receipt] = deliver(VoiceChannel, options(peer), call)
    [got] = peer.wait_for(1, kind="call")
    assert isinstance(receipt, Receipt)
    assert receipt.provider_id == got.sid
    assert got.sid.startswith("CA")
    say = ET.fromstring(got.form["Twiml"].encode()).find("Say")
    assert say is not None
    assert (say.get("language"), say.text) == ("ru-RU", text)
    assert got.form["StatusCallback"] == CALLBACK
    assert got.form["StatusCallbackEvent"] == ["initiated", "ringing", "answered", "completed"]
    assert (got.form["From"], got.form["To"]) == (SENDER, "+79161234567")


def test_a_call_falls_back_to_the_configured_voice_language(peer: TwilioPeer) -> None:
    call = message("+15551230002", "Hi", channel=Channel.VOICE, locale="xx-YY")
    deliver(VoiceChannel, options(peer, twilio_voice_language="en-GB"), call)
    say = ET.fromstring(peer.wait_for(1, kind="call")[0].form["Twiml"].encode()).find("Say")
    assert say is not None
    assert say.get("language") == "en-GB"


def test_429_is_retryable_after_the_time_twilio_asked_for(peer: TwilioPeer) -> None:
    peer.script("+15551230003", peers.too_many_requests(retry_after=7))
    [error] = deliver(SmsChannel, options(peer), message("+15551230003"))
    assert isinstance(error, RetryableDeliveryError)
    assert (error.code, error.retry_after) == ("20429", 7.0)
    assert peer.attempts == [("+15551230003", 429)]


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_retryable(peer: TwilioPeer, status: int) -> None:
    peer.script("+15551230004", peers.server_error(status))
    [error] = deliver(SmsChannel, options(peer), message("+15551230004"))
    assert isinstance(error, RetryableDeliveryError)
    assert error.code == str(status)
    assert error.retry_after is None


def test_only_the_scripted_number_fails_and_only_as_often_as_scripted(peer: TwilioPeer) -> None:
    peer.script("+15551230005", peers.server_error(503), times=1)
    first, other = deliver(
        SmsChannel, options(peer), message("+15551230005"), message("+15551230006")
    )
    [again] = deliver(SmsChannel, options(peer), message("+15551230005"))
    assert isinstance(first, RetryableDeliveryError)
    assert isinstance(other, Receipt)
    assert isinstance(again, Receipt)


def test_a_carrier_opt_out_is_permanent_and_suppresses_the_number(peer: TwilioPeer) -> None:
    peer.script("+15551230007", peers.unsubscribed())
    [error] = deliver(SmsChannel, options(peer), message("+15551230007"))
    assert isinstance(error, PermanentDeliveryError)
    assert (error.code, error.suppress) == ("21610", SuppressionReason.CARRIER_OPT_OUT)


@pytest.mark.parametrize("code", [21211, 21614])
def test_an_invalid_number_is_permanent_without_suppressing(peer: TwilioPeer, code: int) -> None:
    peer.script("+15551230008", peers.invalid_number(code))
    [error] = deliver(VoiceChannel, options(peer), message("+15551230008"))
    assert isinstance(error, PermanentDeliveryError)
    assert (error.code, error.suppress) == (str(code), None)


def test_a_malformed_number_is_refused_by_twilio_as_21211(peer: TwilioPeer) -> None:
    [error] = deliver(SmsChannel, options(peer), message("0800 FLOWERS"))
    assert isinstance(error, PermanentDeliveryError)
    assert error.code == "21211"


def test_a_wrong_auth_token_waits_rather_than_failing_every_message(peer: TwilioPeer) -> None:
    [error] = deliver(
        SmsChannel, options(peer, twilio_auth_token="rotated"), message("+15551230009")
    )
    assert isinstance(error, RetryableDeliveryError)
    assert error.code == "20003"


def test_no_answer_within_the_timeout_is_ambiguous(peer: TwilioPeer) -> None:
    peer.script("+15551230010", peers.hang())
    started = time.monotonic()
    [error] = deliver(SmsChannel, options(peer, twilio_timeout=0.5), message("+15551230010"))
    elapsed = time.monotonic() - started
    assert isinstance(error, AmbiguousDeliveryError)
    assert 0.4 <= elapsed < 3, elapsed


def test_a_slow_answer_inside_the_timeout_is_a_success(peer: TwilioPeer) -> None:
    peer.script("+15551230011", peers.delay(300))
    [receipt] = deliver(SmsChannel, options(peer, twilio_timeout=2), message("+15551230011"))
    assert isinstance(receipt, Receipt)


def test_twilio_unreachable_is_retryable() -> None:
    with TwilioPeer() as stopped:
        opts = options(stopped)
    [error] = deliver(SmsChannel, opts, message("+15551230012"))
    assert isinstance(error, RetryableDeliveryError)


def test_the_rate_per_number_holds_by_the_peers_clock(peer: TwilioPeer) -> None:
    batch = [message(f"+1555200{i:04d}") for i in range(100)]
    results = deliver(SmsChannel, options(peer, twilio_rate_per_second=50), *batch)
    assert all(isinstance(result, Receipt) for result in results)
    arrived = sorted(record.at for record in peer.wait_for(100))
    # 100 sends at 50/s are 99 intervals of 20 ms, so at least 1.98 s apart end to end.
    assert arrived[-1] - arrived[0] >= 1.9
    # No second holds more than 50 (+1 at its edge); the peer's clock also sees scheduling
    # jitter on a loaded machine, which can bunch a few arrivals, hence a little slack.
    assert max(sum(1 for t in arrived if s <= t < s + 1) for s in arrived) <= 55


def test_no_more_requests_are_in_flight_than_the_concurrency_cap(peer: TwilioPeer) -> None:
    numbers = [f"+1555300{i:04d}" for i in range(6)]
    for number in numbers:
        peer.script(number, peers.delay(300))
    opts = options(peer, twilio_max_concurrency=2)
    deliver(SmsChannel, opts, *(message(number) for number in numbers))
    arrived = sorted(record.at for record in peer.wait_for(6))
    # Two at a time, 300 ms each: the third finishes one round after the first.
    assert arrived[2] - arrived[0] >= 0.25
    assert arrived[4] - arrived[2] >= 0.25


def test_a_sent_message_can_be_fetched_and_listed_back(peer: TwilioPeer) -> None:
    async def main() -> tuple[Any, list[Any]]:
        channel = SmsChannel.from_options(options(peer))
        receipt = await channel.send(message("+15551230013", "fetch me"))
        await channel.send(message("+15551230099", "not me"))
        fetched = await channel.client.messages(receipt.provider_id).fetch_async()
        listed = await channel.client.messages.list_async(to="+15551230013")
        await channel.aclose()
        return fetched, listed

    fetched, listed = asyncio.run(main())
    first = peer.wait_for(2)[0]
    assert (fetched.sid, fetched.body, fetched.status) == (first.sid, "fetch me", "queued")
    assert [m.sid for m in listed] == [first.sid]


def test_the_peer_refuses_and_records_a_request_that_breaks_the_spec(peer: TwilioPeer) -> None:
    url = f"{peer.url}/2010-04-01/Accounts/{peer.account_sid}/Messages.json"
    auth = (peer.account_sid, peer.auth_token)
    no_to = httpx.post(url, auth=auth, data={"From": SENDER, "Body": "hi"})
    unknown = httpx.post(
        url, auth=auth, data={"To": "+15551230014", "From": SENDER, "Body": "hi", "Colour": "red"}
    )
    assert (no_to.status_code, no_to.json()["code"]) == (400, 21604)
    assert unknown.status_code == 400
    assert "Colour" in unknown.json()["message"]
    violations = peer.take_violations()
    assert any("'To' is a required property" in v for v in violations)
    assert any("'Colour'" in v for v in violations)
    assert peer.accepted == []


def test_the_peer_refuses_a_wrong_password(peer: TwilioPeer) -> None:
    url = f"{peer.url}/2010-04-01/Accounts/{peer.account_sid}/Messages.json"
    answer = httpx.post(url, auth=(peer.account_sid, "guess"), data={"To": "+15551230015"})
    assert (answer.status_code, answer.json()["code"]) == (401, 20003)


def test_options_need_sid_token_and_an_e164_sender() -> None:
    empty = TwilioOptions(
        _env_file=None, twilio_account_sid=None, twilio_auth_token=None, twilio_from=None
    )
    assert not empty.configured
    with pytest.raises(ValueError, match="HUB_TWILIO_ACCOUNT_SID"):
        SmsChannel.from_options(empty)
    with pytest.raises(ValidationError, match=r"E\.164"):
        TwilioOptions(_env_file=None, twilio_from="5005550006")


def test_an_empty_text_is_refused_before_calling_twilio(peer: TwilioPeer) -> None:
    [error] = deliver(SmsChannel, options(peer), message("+15551230016", text=None))
    assert isinstance(error, PermanentDeliveryError)
    assert peer.attempts == []


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("ru", "ru-RU"), ("ru_RU", "ru-RU"), ("pt", "pt-BR"), ("pt-pt", "pt-PT"), ("en-IN", "en-IN"),
     ("de-AT", "de-DE"), (None, "en-US"), ("tlh", "en-US")],
)  # fmt: skip
def test_locales_map_to_a_say_language(locale: str | None, expected: str) -> None:
    assert say_language(locale, "en-US") == expected


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # long past
    later = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= (retry_after_seconds(later) or 0) <= 61


@pytest.mark.parametrize(
    ("raised", "expected", "code"),
    [
        (TwilioRestException(503, "/x", "busy", 503), RetryableDeliveryError, "503"),
        (TwilioRestException(400, "/x", "stop", 21610), PermanentDeliveryError, "21610"),
        (aiohttp.ConnectionTimeoutError("connect"), RetryableDeliveryError, None),
        (aiohttp.ServerDisconnectedError(), AmbiguousDeliveryError, None),
        (aiohttp.SocketTimeoutError("read"), AmbiguousDeliveryError, None),
        (json.JSONDecodeError("no", "<html>", 0), AmbiguousDeliveryError, None),
    ],
)
def test_what_other_paths_raise_is_translated_too(
    raised: BaseException, expected: type[Exception], code: str | None
) -> None:
    # A stock twilio http client raises TwilioRestException; a dropped connection, a read
    # timeout or a garbled 2xx mean the message may exist.
    translated = translate(raised)
    assert type(translated) is expected
    assert translated.code == code
