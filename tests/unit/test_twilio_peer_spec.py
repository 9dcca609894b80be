"""The Twilio peer's spec checks: strict enough to catch a bad request or answer, no stricter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.peers.twilio import ACCOUNT, ROUTES, SPEC, TwilioSpec, load_spec

SENDER, TO = "+15005550006", "+15551230001"


@pytest.fixture(scope="module")
def spec() -> TwilioSpec:
    return load_spec()


def examples() -> list[tuple[str, str, Any]]:
    document = json.loads(SPEC.read_text())
    found = []
    for (method, tail), op_id in ROUTES.items():
        for answer in document["paths"][ACCOUNT + tail][method.lower()]["responses"].values():
            for name, example in answer["content"]["application/json"]["examples"].items():
                found.append((op_id, name, example["value"]))
    return found


@pytest.mark.parametrize(("op_id", "name", "document"), examples())
def test_every_example_in_twilios_spec_passes_the_answer_check(
    spec: TwilioSpec, op_id: str, name: str, document: Any
) -> None:
    assert spec.check_answer(op_id, document) == [], name


@pytest.fixture
def message_answer() -> dict[str, Any]:
    [document] = [
        doc for op_id, name, doc in examples() if (op_id, name) == ("CreateMessage", "create")
    ]
    return dict(document)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"colour": "red"}, "Additional properties are not allowed"),
        ({"status": "teleported"}, "is not one of"),
        ({"sid": "SM" + "g" * 32}, "does not match"),
        ({"num_segments": 1}, "is not of type"),
    ],
)
def test_an_answer_that_twilio_would_not_send_is_caught(
    spec: TwilioSpec, message_answer: dict[str, Any], change: dict[str, Any], complaint: str
) -> None:
    problems = spec.check_answer("CreateMessage", message_answer | change)
    assert len(problems) == 1
    assert complaint in problems[0]


def test_an_answer_missing_a_field_is_caught(
    spec: TwilioSpec, message_answer: dict[str, Any]
) -> None:
    del message_answer["date_sent"]
    assert spec.check_answer("CreateMessage", message_answer) == [
        "CreateMessage answer: 'date_sent' is a required property"
    ]


def test_a_twilio_error_document_is_checked_too(spec: TwilioSpec) -> None:
    assert (
        spec.check_answer(None, {"code": 20429, "message": "m", "more_info": "u", "status": 429})
        == []
    )
    assert spec.check_answer(None, {"code": "20429", "message": "m"}) != []


def test_a_good_sms_and_call_pass_with_typed_values(spec: TwilioSpec) -> None:
    sms = spec.check_form(
        "CreateMessage",
        [
            ("To", TO),
            ("From", SENDER),
            ("Body", "hi"),
            ("ValidityPeriod", "60"),
            ("SmartEncoded", "true"),
        ],
    )
    events = [("StatusCallbackEvent", e) for e in ("initiated", "completed")]
    call = spec.check_form(
        "CreateCall", [("To", TO), ("From", SENDER), ("Twiml", "<Response/>"), *events]
    )
    assert (sms.problems, call.problems) == ([], [])
    assert sms.values["ValidityPeriod"] == 60
    assert sms.values["SmartEncoded"] is True
    assert call.values["StatusCallbackEvent"] == ["initiated", "completed"]


SMS = [("To", TO), ("From", SENDER), ("Body", "a")]
CALL = [("To", TO), ("From", SENDER), ("Url", "https://hub.example.com/twiml")]
BROKEN = {  # id: (operation, fields, Twilio code, what the complaint says)
    "no To": ("CreateMessage", SMS[1:], 21604, "'To' is a required property"),
    "no sender": ("CreateMessage", [SMS[0], SMS[2]], 21603, "one of From, MessagingServiceSid"),
    "no body": ("CreateMessage", SMS[:2], 21602, "one of Body, MediaUrl, ContentSid"),
    "no TwiML": ("CreateCall", CALL[:2], 21205, "one of Url, Twiml, ApplicationSid"),
    "call from nobody": ("CreateCall", [CALL[0], CALL[2]], 21603, "'From' is a required"),
    "unknown field": ("CreateMessage", [*SMS, ("Colour", "red")], 20422, "'Colour' is not in"),
    "field twice": ("CreateMessage", [*SMS, ("Body", "b")], 20422, "'Body' given twice"),
    "not a boolean": ("CreateMessage", [*SMS, ("SmartEncoded", "yes")], 20422, "'boolean'"),
    "not an integer": ("CreateMessage", [*SMS, ("Attempt", "two")], 20422, "'integer'"),
    "bad SID": ("CreateMessage", [*SMS, ("MessagingServiceSid", "MG1")], 20422, "does not match"),
    "bad enum": ("CreateCall", [*CALL, ("Method", "PUT")], 20422, "'PUT' is not one of"),
    "bad update": ("UpdateMessage", [("Status", "delivered")], 20422, "is not one of"),
}


@pytest.mark.parametrize(("op_id", "pairs", "code", "complaint"), BROKEN.values(), ids=BROKEN)
def test_a_request_that_breaks_the_spec_is_named_with_twilios_code(
    spec: TwilioSpec, op_id: str, pairs: list[tuple[str, str]], code: int, complaint: str
) -> None:
    checked = spec.check_form(op_id, pairs)
    assert checked.code == code
    assert any(complaint in problem for problem in checked.problems), checked.problems
