"""The decision a later escalation step makes when it comes due: it goes unless an earlier
step of the same person did what the step's `unless` asks (reached them, or a person opened
or clicked it), and the check it keeps says which step and when, or what it waited for."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError

from hub.dispatch.escalation import Check, Earlier, decide, unless_of
from hub.domain import Channel, DeliveryState, EscalationUnless
from hub.schemas.notifications import NotificationIn

SENT_AT = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)
OPEN_AT = SENT_AT + dt.timedelta(minutes=7)
CLICK_AT = SENT_AT + dt.timedelta(minutes=9)


def chain(unless: str | None) -> list[dict[str, Any]]:
    sms: dict[str, Any] = {"channel": "sms", "after_seconds": 600.0}
    if unless is not None:
        sms["unless"] = unless
    return [{"channel": "email", "after_seconds": 0}, sms]


def email(
    state: DeliveryState = DeliveryState.SENT,
    *,
    opened: dt.datetime | None = None,
    clicked: dt.datetime | None = None,
) -> Earlier:
    return Earlier(
        delivery_id=11,
        step=0,
        channel=Channel.EMAIL,
        state=state,
        changed_at=SENT_AT,
        opened=opened,
        clicked=clicked,
    )


def verdict(unless: str | None, *earlier: Earlier) -> Check:
    check = decide(1, chain(unless), earlier)
    assert check is not None
    return check


def test_an_accepted_email_stops_the_next_step_by_default_as_before() -> None:
    stop = verdict(None, email()).stopped_by
    assert stop is not None
    assert (stop.delivery_id, stop.what, stop.at) == (11, "accepted", SENT_AT)


def test_an_sms_only_sent_does_not_count_as_reached_until_its_receipt() -> None:
    sms = Earlier(5, 0, Channel.SMS, DeliveryState.SENT, SENT_AT)
    steps = [{"channel": "sms"}, {"channel": "voice", "after_seconds": 60}]
    went = decide(1, steps, [sms])
    assert went is not None
    assert went.stopped_by is None
    delivered = decide(1, steps, [Earlier(5, 0, Channel.SMS, DeliveryState.DELIVERED, OPEN_AT)])
    assert delivered is not None
    assert delivered.stopped_by is not None
    assert (delivered.stopped_by.what, delivered.stopped_by.at) == ("delivered", OPEN_AT)


def test_opened_goes_when_the_email_was_accepted_but_nobody_opened_it() -> None:
    check = verdict("opened", email())
    assert check.stopped_by is None
    assert check.as_changes() == {
        "step": 1,
        "unless": "opened",
        "after_seconds": 600.0,
        "waited_seconds": 600.0,
        "earlier": [{"delivery_id": 11, "step": 0, "channel": "email", "state": "sent"}],
    }


def test_opened_stops_on_a_persons_open_and_says_when() -> None:
    check = verdict("opened", email(opened=OPEN_AT))
    assert check.stopped_by is not None
    assert check.as_changes()["stopped_by"] == {
        "delivery_id": 11,
        "step": 0,
        "channel": "email",
        "what": "opened",
        "at": OPEN_AT.isoformat(),
    }


def test_a_click_without_an_open_counts_as_opened() -> None:
    """Images blocked, a link followed: the person read it."""
    stop = verdict("opened", email(clicked=CLICK_AT)).stopped_by
    assert stop is not None
    assert (stop.what, stop.at) == ("clicked", CLICK_AT)


def test_clicked_goes_when_the_email_was_only_opened() -> None:
    assert verdict("clicked", email(opened=OPEN_AT)).stopped_by is None


def test_clicked_stops_on_a_persons_click() -> None:
    stop = verdict("clicked", email(opened=OPEN_AT, clicked=CLICK_AT)).stopped_by
    assert stop is not None
    assert stop.what == "clicked"


def test_a_bounced_email_never_stops_the_next_step() -> None:
    for unless in (None, "opened", "clicked"):
        check = verdict(unless, email(DeliveryState.BOUNCED))
        assert check.stopped_by is None, unless


def test_of_several_earlier_steps_the_first_to_satisfy_it_is_named() -> None:
    later_sms = Earlier(12, 1, Channel.SMS, DeliveryState.SENT, SENT_AT, clicked=OPEN_AT)
    steps = [*chain("opened"), {"channel": "voice", "after_seconds": 60, "unless": "opened"}]
    check = decide(2, steps, [later_sms, email(clicked=CLICK_AT)])
    assert check is not None
    assert check.stopped_by is not None
    assert (check.stopped_by.delivery_id, check.stopped_by.step) == (12, 1)
    assert [e.step for e in check.earlier] == [0, 1]  # in chain order
    # "Not opened within": since the e-mail went, not the voice step's own minute.
    assert (check.after_seconds, check.waited_seconds) == (60.0, 660.0)


def test_the_first_step_that_could_go_has_nothing_to_check() -> None:
    assert decide(1, chain("opened"), []) is None
    later = Earlier(13, 2, Channel.VOICE, DeliveryState.DEFERRED, SENT_AT)
    assert decide(1, chain("opened"), [later]) is None  # a later step is not an earlier one


def test_a_step_stored_before_conditions_existed_means_reached() -> None:
    assert unless_of({"channel": "sms", "after_seconds": 60}) is EscalationUnless.REACHED
    assert unless_of({"channel": "sms", "unless": "clicked"}) is EscalationUnless.CLICKED


BODY: dict[str, Any] = {"topic": "alerts", "content": {"": {"sms_body": "x"}}}


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (
            [{"channel": "email", "unless": "opened"}, {"channel": "sms"}],
            "escalation.0.unless: the first step goes at once",
        ),
        (
            [{"channel": "voice"}, {"channel": "webhook", "unless": "clicked"}],
            "escalation.1.unless: no step before it can be clicked",
        ),
    ],
)
def test_a_condition_no_earlier_step_can_meet_is_refused(
    steps: list[dict[str, Any]], words: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        NotificationIn.model_validate(BODY | {"escalation": steps})
    assert words in str(raised.value)


def test_a_chain_with_conditions_is_read_with_reached_as_the_default() -> None:
    body = NotificationIn.model_validate(
        BODY
        | {
            "escalation": [
                {"channel": "email"},
                {"channel": "sms", "after_minutes": 1440, "unless": "opened"},
                {"channel": "voice", "after_minutes": 60},
            ]
        }
    )
    assert body.escalation is not None
    assert [s.unless for s in body.escalation] == [
        EscalationUnless.REACHED,
        EscalationUnless.OPENED,
        EscalationUnless.REACHED,
    ]
