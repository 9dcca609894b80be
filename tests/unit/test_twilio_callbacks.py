"""What Twilio posts back, read into Hub's words without a socket: status words to delivery
states, form fields to neutral values, and X-Twilio-Signature checked against signatures that
the twilio library's own RequestValidator computes, as Twilio does."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from hub.channels import registry
from hub.channels.base import (
    CallbackRequest,
    InboundText,
    Keypress,
    MalformedCallback,
    ProviderCallbacks,
    StatusUpdate,
    UnverifiedCallback,
)
from hub.channels.twilio import SmsChannel, TwilioOptions, VoiceChannel
from hub.channels.twilio_callbacks import TwilioCallbacks, state_of
from hub.domain import DeliveryState, SuppressionReason

TOKEN = "twilio-auth-token"
URL = "https://hub.example.com/inbound/twilio/status"
SID = "SM" + "0" * 32
READER = TwilioCallbacks(TOKEN)


def signed(params: dict[str, str], *, url: str = URL, token: str = TOKEN) -> CallbackRequest:
    signature = RequestValidator(token).compute_signature(url, params)
    return CallbackRequest(
        url=url, headers={"x-twilio-signature": signature}, body=urlencode(params).encode()
    )


@pytest.mark.parametrize(
    ("words", "state"),
    [
        (
            [
                "accepted",
                "scheduled",
                "queued",
                "sending",
                "sent",
                "initiated",
                "ringing",
                "in-progress",
            ],
            DeliveryState.SENT,
        ),
        (["delivered", "read", "completed"], DeliveryState.DELIVERED),
        (["undelivered", "failed", "canceled", "busy", "no-answer"], DeliveryState.FAILED),
    ],
)
def test_twilios_status_words_mean_a_delivery_state(words: list[str], state: DeliveryState) -> None:
    for word in words:
        assert state_of(word) is state, word
        assert state_of(word.upper()) is state, word


def test_a_status_word_hub_does_not_know_changes_nothing() -> None:
    assert state_of("receiving") is None
    assert READER.status({"MessageSid": SID, "MessageStatus": "receiving"}) is None
    assert READER.status({"MessageStatus": "delivered"}) is None  # no SID
    assert READER.status({"MessageSid": SID}) is None  # no status


def test_a_message_status_in_hubs_words() -> None:
    update = READER.status({"MessageSid": SID, "MessageStatus": "Delivered", "ErrorCode": ""})
    assert update == StatusUpdate(
        provider="twilio", provider_id=SID, state=DeliveryState.DELIVERED, status="delivered"
    )
    failed = READER.status({"MessageSid": SID, "SmsStatus": "undelivered", "ErrorCode": "30003"})
    assert failed is not None
    assert (failed.state, failed.status, failed.error_code) == (
        DeliveryState.FAILED,
        "undelivered",
        "30003",
    )
    assert (failed.reason, failed.error) == ("twilio:undelivered", "Twilio reported undelivered")
    assert failed.suppress is None


def test_error_21610_asks_for_the_number_to_be_suppressed() -> None:
    update = READER.status({"MessageSid": SID, "MessageStatus": "failed", "ErrorCode": "21610"})
    assert update is not None
    assert update.suppress is SuppressionReason.CARRIER_OPT_OUT


def test_a_call_status_says_whether_a_person_answered() -> None:
    call = "CA" + "1" * 32
    machine = READER.status(
        {"CallSid": call, "CallStatus": "completed", "AnsweredBy": "machine_start"}
    )
    assert machine is not None
    assert (machine.provider_id, machine.state) == (call, DeliveryState.DELIVERED)
    assert (machine.answered_by, machine.reason) == ("machine_start", "answered_by:machine_start")
    person = READER.status({"CallSid": call, "CallStatus": "completed", "AnsweredBy": "human"})
    assert person is not None
    assert (person.answered_by, person.reason) == ("human", None)  # a person: nothing to say
    busy = READER.status({"CallSid": call, "CallStatus": "busy"})
    assert busy is not None
    assert (busy.state, busy.answered_by, busy.reason) == (
        DeliveryState.FAILED,
        None,
        "twilio:busy",
    )


def test_a_signature_twilio_computed_is_accepted() -> None:
    params = {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": "AC" + "0" * 32}
    assert READER.verified(signed(params)) == params
    with_query = URL + "?attempt=2"
    assert READER.verified(signed(params, url=with_query)) == params
    blank = {"From": "+14155550100", "Body": ""}  # blank fields are signed too
    assert READER.verified(signed(blank)) == blank


@pytest.mark.parametrize(
    "forgery",
    ["tampered field", "another URL", "another token", "no signature", "not UTF-8"],
)
def test_anything_twilio_did_not_sign_is_refused(forgery: str) -> None:
    params = {"MessageSid": SID, "MessageStatus": "delivered"}
    request = signed(params)
    if forgery == "tampered field":
        request = CallbackRequest(
            url=URL,
            headers=request.headers,
            body=urlencode(params | {"MessageStatus": "failed"}).encode(),
        )
    elif forgery == "another URL":
        request = signed(params, url="https://proxy.internal/inbound/twilio/status")
        request = CallbackRequest(url=URL, headers=request.headers, body=request.body)
    elif forgery == "another token":
        request = signed(params, token="someone-elses")
    elif forgery == "no signature":
        request = CallbackRequest(url=URL, headers={}, body=request.body)
    else:
        request = CallbackRequest(url=URL, headers=request.headers, body=b"Body=\xff")
    with pytest.raises(UnverifiedCallback):
        READER.verified(request)


def test_without_an_auth_token_every_callback_is_refused() -> None:
    unset = TwilioCallbacks.from_options(TwilioOptions(twilio_auth_token=None))
    with pytest.raises(UnverifiedCallback, match="HUB_TWILIO_AUTH_TOKEN is not set"):
        unset.verified(signed({"MessageSid": SID}))
    built = TwilioCallbacks.from_options(TwilioOptions(twilio_auth_token=TOKEN))
    assert built.verified(signed({"MessageSid": SID})) == {"MessageSid": SID}


def test_an_inbound_text_and_a_keypress_in_hubs_words() -> None:
    text = READER.text({"From": "+14155550100", "Body": " Stop ", "MessageSid": SID})
    assert text == InboundText("twilio", "+14155550100", " Stop ", SID)
    assert READER.text({"From": "+14155550100"}) == InboundText("twilio", "+14155550100", "", None)
    with pytest.raises(MalformedCallback, match="needs From"):
        READER.text({"Body": "STOP"})
    call = "CA" + "2" * 32
    pressed = READER.keypress({"To": "+14155550101", "Digits": "9", "CallSid": call})
    assert pressed == Keypress("twilio", "+14155550101", "9", call)
    with pytest.raises(MalformedCallback, match="needs To"):
        READER.keypress({"Digits": "9"})


def test_answers_are_twiml() -> None:
    helped = ET.fromstring(READER.answer_text("Reply STOP to stop."))
    assert [(e.tag, e.text) for e in helped] == [("Message", "Reply STOP to stop.")]
    assert list(ET.fromstring(READER.answer_text(None))) == []
    assert [e.tag for e in ET.fromstring(READER.answer_keypress())] == ["Hangup"]
    assert TwilioCallbacks.answer_type == "text/xml"


def test_sms_and_voice_name_one_reader_at_the_public_paths() -> None:
    assert SmsChannel.callbacks is VoiceChannel.callbacks is TwilioCallbacks
    assert isinstance(READER, ProviderCallbacks)
    paths = TwilioCallbacks.paths
    assert (paths.status, paths.text, paths.keypress) == (
        "/inbound/twilio/status",
        "/inbound/twilio/sms",
        "/inbound/twilio/voice",
    )
    reader, options = registry.callback_readers()["twilio"]
    assert (reader, options) == (TwilioCallbacks, TwilioOptions)
