"""A paused channel: how long it waits, who probes, and when it resumes."""

from __future__ import annotations

import datetime as dt

from hub.dispatch.pause import Admission, Pauses
from hub.domain import Channel

T0 = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
GO = Admission()
PROBE = Admission(probe=True)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def wait(seconds: float) -> Admission:
    return Admission(put_off_until=at(seconds))


def test_each_failed_probe_doubles_the_pause_up_to_the_longest() -> None:
    pauses = Pauses(first=10, longest=60)
    ends, now = [], 0.0
    for _ in range(5):
        until = pauses.trip(Channel.EMAIL, at(now), why="421")
        ends.append((until - at(now)).total_seconds())
        now = (until - T0).total_seconds()
        assert pauses.admit(Channel.EMAIL, at(now)) == PROBE
    assert ends == [10, 20, 40, 60, 60]


def test_batches_failing_together_make_one_pause_and_retry_after_is_honoured() -> None:
    pauses = Pauses(first=10)
    first = pauses.trip(Channel.SMS, T0, why="503")
    assert pauses.trip(Channel.SMS, at(1), why="503") == first
    assert pauses.trip(Channel.EMAIL, T0, why="429", retry_after=90) == at(90)


def test_only_one_batch_probes_and_the_rest_wait_for_its_answer() -> None:
    pauses = Pauses(first=10)
    assert pauses.admit(Channel.EMAIL, T0) == GO
    pauses.trip(Channel.EMAIL, T0, why="421")
    assert pauses.admit(Channel.EMAIL, at(5)) == wait(10), "paused: put off to the end"
    assert pauses.admit(Channel.SMS, at(5)) == GO, "other channels are not paused"
    assert pauses.admit(Channel.EMAIL, at(11)) == PROBE
    assert pauses.admit(Channel.EMAIL, at(11)) == wait(21), "the others wait a little"
    pauses.resume(Channel.EMAIL, at(12))
    assert pauses.admit(Channel.EMAIL, at(12)) == GO


def test_a_probe_that_got_no_answer_lets_the_next_batch_probe() -> None:
    pauses = Pauses(first=10)
    pauses.trip(Channel.EMAIL, T0, why="421")
    assert pauses.admit(Channel.EMAIL, at(10)) == PROBE
    pauses.probed(Channel.EMAIL)  # its rows were already claimed elsewhere: nothing sent
    assert pauses.admit(Channel.EMAIL, at(11)) == PROBE


def test_a_probe_whose_worker_died_is_replaced_after_the_longest_pause() -> None:
    pauses = Pauses(first=10, longest=300)
    pauses.trip(Channel.EMAIL, T0, why="421")
    assert pauses.admit(Channel.EMAIL, at(10)) == PROBE
    assert pauses.admit(Channel.EMAIL, at(11)) != PROBE
    assert pauses.admit(Channel.EMAIL, at(10 + 301)) == PROBE
