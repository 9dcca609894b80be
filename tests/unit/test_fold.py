"""Folding preference events: last writer wins per field, whatever the arrival order."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.preferences.fold import FoldedState, PreferenceChange, fold

UTC = dt.UTC
T0 = dt.datetime(2024, 6, 12, 12, tzinfo=UTC)
PROPERTIES = settings(max_examples=300, deadline=None, database=None)


def change(
    minute: int, event_id: int, topic: str | None = None, **after: object
) -> PreferenceChange:
    return PreferenceChange(T0 + dt.timedelta(minutes=minute), event_id, topic, after)


def test_no_events_fold_to_an_empty_state() -> None:
    assert fold([]) == FoldedState(preferences={}, subscriptions={})


def test_the_latest_write_of_each_field_wins() -> None:
    state = fold(
        [
            change(2, 7, "news", status="unsubscribed"),
            change(1, 9, "news", status="subscribed", channels=["email"]),
            change(3, 1, None, quiet_hours=["22:00", "07:00"]),
            change(0, 2, None, quiet_hours=None, unsubscribed_all=False),
        ]
    )
    assert state == FoldedState(
        preferences={"quiet_hours": ["22:00", "07:00"], "unsubscribed_all": False},
        subscriptions={"news": {"status": "unsubscribed", "channels": ["email"]}},
    )


def test_a_tie_in_time_goes_to_the_higher_event_id() -> None:
    older, newer = change(5, 1, "news", status="pending"), change(5, 2, "news", status="subscribed")
    assert fold([newer, older]).subscriptions == {"news": {"status": "subscribed"}}
    assert fold([older, newer]).subscriptions == {"news": {"status": "subscribed"}}


def test_the_same_instant_in_another_zone_is_the_same_time() -> None:
    kolkata = dt.timezone(dt.timedelta(hours=5, minutes=30))
    later_id = PreferenceChange(T0.astimezone(kolkata), 2, None, {"unsubscribed_all": True})
    earlier_id = PreferenceChange(T0, 1, None, {"unsubscribed_all": False})
    assert fold([later_id, earlier_id]).preferences == {"unsubscribed_all": True}


def test_contact_wide_and_topic_fields_do_not_mix() -> None:
    state = fold([change(0, 1, None, status="x"), change(1, 2, "news", status="subscribed")])
    assert state.preferences == {"status": "x"}
    assert state.subscriptions == {"news": {"status": "subscribed"}}


def test_a_replayed_event_changes_nothing() -> None:
    first, second = (
        change(0, 1, "news", status="subscribed"),
        change(1, 2, "news", status="unsubscribed"),
    )
    assert fold([first, second, first]) == fold([first, second])


def test_two_different_events_with_one_id_are_refused() -> None:
    with pytest.raises(ValueError, match="event 1"):
        fold([change(0, 1, "news", status="subscribed"), change(0, 1, "news", status="pending")])


def test_a_naive_time_is_refused() -> None:
    naive = PreferenceChange(dt.datetime(2024, 6, 12), 1, None, {"unsubscribed_all": True})
    with pytest.raises(ValueError, match="timezone-aware"):
        fold([naive])


def test_the_state_does_not_share_values_with_the_events() -> None:
    channels = ["email"]
    state = fold([change(0, 1, "news", channels=channels)])
    channels.append("sms")
    assert state.subscriptions == {"news": {"channels": ["email"]}}


# --- RELIABILITY 14/15, as properties --------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "email", "sms"])
json_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.just("at"), scalars)
# Few instants, topics and fields, written in several zones, so that ties and overwrites abound.
instants = st.builds(
    lambda minute, hours: (T0 + dt.timedelta(minutes=minute)).astimezone(
        dt.timezone(dt.timedelta(hours=hours))
    ),
    st.integers(0, 4),
    st.sampled_from([0, -5, 3, 14]),
)
afters = st.dictionaries(
    st.sampled_from(["status", "channels", "frequency", "quiet_hours"]), json_values
)


@st.composite
def event_logs(draw: st.DrawFn) -> list[PreferenceChange]:
    ids = draw(st.lists(st.integers(0, 10_000), unique=True, max_size=10))
    return [
        PreferenceChange(
            draw(instants), event_id, draw(st.sampled_from([None, "news", "bills"])), draw(afters)
        )
        for event_id in ids
    ]


def reference_fold(events: list[PreferenceChange]) -> FoldedState:
    """The definition itself: apply each distinct event in (occurred_at, event_id) order."""
    state = FoldedState()
    for event in sorted(
        {e.event_id: e for e in events}.values(), key=lambda e: (e.occurred_at, e.event_id)
    ):
        if event.topic is None:
            state.preferences.update(event.after)
        elif event.after:
            state.subscriptions.setdefault(event.topic, {}).update(event.after)
    return state


@PROPERTIES
@given(event_logs(), st.data())
def test_arrival_order_and_replays_do_not_matter(
    events: list[PreferenceChange], data: st.DataObject
) -> None:
    """(e) Shuffled, with some events delivered again, the fold is the same, key order included."""
    replays = data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []
    arrived = data.draw(st.permutations(events + replays))
    expected, got = fold(events), fold(arrived)
    assert got == expected
    assert list(got.preferences) == list(expected.preferences)
    assert list(got.subscriptions) == list(expected.subscriptions)


@PROPERTIES
@given(event_logs())
def test_folding_everything_twice_is_folding_it_once(events: list[PreferenceChange]) -> None:
    """(f)"""
    assert fold(events + events) == fold(events)


@PROPERTIES
@given(event_logs())
def test_the_fold_is_last_writer_wins(events: list[PreferenceChange]) -> None:
    assert fold(events) == reference_fold(events)
