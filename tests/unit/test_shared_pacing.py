"""Pacing and pauses as the hub wires them, without sockets: which implementation the broker
chooses, how adapters get their budget, and what the shared ones do with Redis's answers and
with its absence (fail closed). The Lua scripts themselves run against a real Redis in
tests/integration/test_shared_pacing.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, cast

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from hub.channels.base import RetryableDeliveryError
from hub.channels.capture import CaptureChannel, CaptureOptions
from hub.channels.ratelimit import LocalPacer, RateLimiter, TokenBucket
from hub.channels.twilio import SmsChannel, TwilioOptions, VoiceChannel
from hub.dispatch.pause import Admission, Pauses
from hub.dispatch.shared_pause import SharedPauses
from hub.dispatch.shared_rate import SharedPacer
from hub.domain import Channel
from hub.settings import Settings
from hub.workers.engine import SendEngine
from hub.workers.service import pacing

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SENDER = "+15005550006"


def twilio(**overrides: Any) -> TwilioOptions:
    values: dict[str, Any] = {
        "twilio_account_sid": "AC" + "0" * 32,
        "twilio_auth_token": "token",
        "twilio_from": SENDER,
        "twilio_rate_per_second": 5,
    }
    return TwilioOptions(_env_file=None, **(values | overrides))


class RecordingPacer:
    """Hands out local buckets and remembers what it was asked for."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, float, int]] = []
        self.closed = False

    def limiter(self, key: str, *, rate_per_second: float, burst: int = 1) -> RateLimiter:
        self.asked.append((key, rate_per_second, burst))
        return TokenBucket(rate_per_second, burst)

    async def aclose(self) -> None:
        self.closed = True


# Wiring -----------------------------------------------------------------------------------


def test_the_embedded_default_keeps_pacing_and_pauses_in_the_process() -> None:
    pacer, pauses = pacing(Settings(_env_file=None))  # type: ignore[call-arg]
    assert isinstance(pacer, LocalPacer)
    assert isinstance(pauses, Pauses)


def test_a_broker_puts_pacing_and_pauses_in_its_redis_under_the_hubs_namespace() -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, broker_url="redis://127.0.0.1:1/0", broker_namespace="acme"
    )
    pacer, pauses = pacing(settings)  # nothing connects until used
    assert isinstance(pacer, SharedPacer)
    assert isinstance(pauses, SharedPauses)
    assert pacer.limiter("twilio-sms:+1", rate_per_second=1).key == "acme:pace:twilio-sms:+1"
    assert pauses.keys(Channel.SMS)[0].startswith("acme:{pause:sms}")
    pauses.close()
    asyncio.run(pacer.aclose())


def test_one_key_is_one_budget_in_a_local_pacer() -> None:
    pacer = LocalPacer()
    sms = pacer.limiter("twilio-sms:+1", rate_per_second=1)
    assert pacer.limiter("twilio-sms:+1", rate_per_second=1) is sms
    assert pacer.limiter("twilio-voice:+1", rate_per_second=1) is not sms


def test_twilio_adapters_take_the_numbers_budget_from_the_pacer_they_are_given() -> None:
    pacer = RecordingPacer()
    SmsChannel.from_options(twilio(), pacer=pacer)
    VoiceChannel(twilio(), pacer=pacer)
    assert pacer.asked == [(f"twilio-sms:{SENDER}", 5, 1), (f"twilio-voice:{SENDER}", 5, 1)]
    assert isinstance(SmsChannel(twilio()).bucket, TokenBucket), "alone: its own bucket"


def test_the_send_engine_gives_its_pacer_to_paced_adapters_and_backups_and_closes_it() -> None:
    pacer = RecordingPacer()
    chosen: Any = {
        Channel.SMS: (SmsChannel, twilio()),
        Channel.EMAIL: (CaptureChannel, CaptureOptions()),  # not paced: built as before
    }
    engine = SendEngine(chosen, backups={Channel.SMS: [twilio(twilio_from="+15005550007")]},
                        pacer=pacer)  # fmt: skip
    engine.close()
    assert [key for key, _, _ in pacer.asked] == [
        f"twilio-sms:{SENDER}",
        "twilio-sms:+15005550007",  # a backup number has a budget of its own
    ]
    assert pacer.closed


# The shared bucket's loop, over scripted answers ------------------------------------------


class ScriptedRedis:
    """Stands in for the asyncio client: each call of the script takes the next answer
    (a (reserved, µs) pair, or an exception to raise)."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.calls = 0

    def register_script(self, _lua: str) -> Callable[..., Any]:
        async def run(keys: list[str], args: list[Any]) -> Any:
            self.calls += 1
            answer = self.answers.pop(0)
            if isinstance(answer, BaseException):
                raise answer
            return list(answer)

        return run

    async def aclose(self) -> None:
        return None


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)


def acquire(answers: list[Any], **pacer: float) -> tuple[list[float], ScriptedRedis]:
    store = ScriptedRedis(answers)
    shared = SharedPacer(cast(Any, store), namespace="hub", **pacer)
    bucket = shared.limiter("twilio-sms:+1", rate_per_second=10)
    sleeps = Sleeps()
    bucket._sleep = sleeps  # the loop's sleeps, recorded instead of slept
    asyncio.run(bucket.acquire())
    return sleeps.slept, store


def test_a_reserved_slot_is_waited_for_and_taken() -> None:
    slept, store = acquire([(1, 250_000)])
    assert (slept, store.calls) == ([0.25], 1), "one round trip per send"
    assert acquire([(1, 0)])[0] == [], "a free slot: no sleep at all"


def test_a_slot_beyond_the_horizon_is_asked_for_again_when_it_is_not() -> None:
    slept, store = acquire([(0, 2_000_000), (1, 9_900_000)])
    assert store.calls == 2
    assert 2.0 <= slept[0] <= 2.1, "back when inside the horizon, jittered by an interval"
    assert slept[1] == pytest.approx(9.9)


def test_redis_away_holds_the_send_and_says_so_once(caplog: pytest.LogCaptureFixture) -> None:
    down = RedisConnectionError("Connection refused")
    with caplog.at_level(logging.WARNING, logger="hub.dispatch"):
        slept, store = acquire([down, down, down, (1, 0)])
    assert store.calls == 4, "asked again until it answered; never sent without a slot"
    assert 0.05 <= slept[0] <= 0.1, "0.1 s, doubling, jittered"
    assert 0.1 <= slept[1] <= 0.2
    assert 0.2 <= slept[2] <= 0.4
    assert [r.getMessage() for r in caplog.records] == [
        "shared rate limit: Redis does not answer (ConnectionError: Connection refused); "
        "paced sends (SMS, calls) wait for it; none goes out unpaced",
        "shared rate limit: Redis answers again after 0.0 s",
    ]


def test_redis_away_past_the_patience_fails_the_send_as_retryable_and_unavailable() -> None:
    down = RedisConnectionError("Connection refused")
    with pytest.raises(RetryableDeliveryError, match="nothing was sent") as raised:
        acquire([down], patience=0)
    assert raised.value.unavailable, "the batch pauses its channel, attempts unspent"


# The shared pauses, over scripted answers -------------------------------------------------


class ScriptedPauses:
    """Stands in for the sync client: each script answers with what the test set for it."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {}
        self.deleted: list[str] = []

    def register_script(self, lua: str) -> Callable[..., Any]:
        name = "admit" if "NX" in lua else "trip" if "HMGET" in lua else "resume"

        def run(keys: list[str], args: list[Any] | None = None) -> Any:
            answer = self.answers[name]
            if isinstance(answer, BaseException):
                raise answer
            return answer

        return run

    def delete(self, key: str) -> int:
        if isinstance(self.answers.get("delete"), BaseException):
            raise self.answers["delete"]
        self.deleted.append(key)
        return 1

    def close(self) -> None:
        return None


@pytest.fixture
def board() -> tuple[SharedPauses, ScriptedPauses]:
    store = ScriptedPauses()
    return SharedPauses(cast(Any, store), namespace="hub", first=10), store


def test_redis_answers_become_admissions_on_the_callers_clock(
    board: tuple[SharedPauses, ScriptedPauses],
) -> None:
    pauses, store = board
    store.answers["admit"] = [0]
    assert pauses.admit(Channel.SMS, NOW) == Admission()
    store.answers["admit"] = [2]
    assert pauses.admit(Channel.SMS, NOW) == Admission(probe=True)
    store.answers["admit"] = [1, 1500]  # ms left: added to this process's own clock
    assert pauses.admit(Channel.SMS, NOW) == Admission(
        put_off_until=NOW + dt.timedelta(seconds=1.5)
    )
    pauses.probed(Channel.SMS)
    assert store.deleted == ["hub:{pause:sms}:probe"]


def test_only_the_process_that_made_a_pause_counts_and_logs_it(
    board: tuple[SharedPauses, ScriptedPauses], caplog: pytest.LogCaptureFixture
) -> None:
    pauses, store = board
    before = REGISTRY.get_sample_value("hub_channel_pauses_total", {"channel": "voice"}) or 0
    with caplog.at_level(logging.WARNING, logger="hub.dispatch"):
        store.answers["trip"] = [1, 20_000, 35_000]
        assert pauses.trip(Channel.VOICE, NOW, why="503") == NOW + dt.timedelta(seconds=20)
        store.answers["trip"] = [0, 19_000, 0]  # another batch, the same pause
        assert pauses.trip(Channel.VOICE, NOW, why="503") == NOW + dt.timedelta(seconds=19)
        store.answers["resume"] = 61_000
        pauses.resume(Channel.VOICE, NOW)
        store.answers["resume"] = -1  # nothing was paused: nothing to say
        pauses.resume(Channel.VOICE, NOW)
    after = REGISTRY.get_sample_value("hub_channel_pauses_total", {"channel": "voice"})
    assert after == before + 1
    assert [r.getMessage() for r in caplog.records] == [
        "voice: the provider is unavailable (503); pausing the channel for 20.0 s, down for "
        "35.0 s so far; the waiting messages keep their attempts",
        "voice: the provider answers again after 61.0 s; the channel resumes",
    ]


def test_redis_away_each_process_pauses_on_its_own_until_it_answers(
    board: tuple[SharedPauses, ScriptedPauses], caplog: pytest.LogCaptureFixture
) -> None:
    pauses, store = board
    down = RedisConnectionError("Connection refused")
    store.answers = dict.fromkeys(["admit", "trip", "resume", "delete"], down)
    with caplog.at_level(logging.WARNING, logger="hub.dispatch"):
        assert pauses.admit(Channel.SMS, NOW) == Admission(), "a batch in hand goes"
        until = pauses.trip(Channel.SMS, NOW, why="503", retry_after=30)
        assert until == NOW + dt.timedelta(seconds=30), "the provider is still spared"
        assert pauses.admit(Channel.SMS, NOW) == Admission(put_off_until=until)
        pauses.probed(Channel.SMS)
        store.answers = {"admit": [0], "resume": -1}  # Redis is back
        assert pauses.admit(Channel.SMS, NOW) == Admission(), "the hub's word counts again"
        store.answers["admit"] = down  # and away again: what it paused alone was forgotten
        assert pauses.admit(Channel.SMS, NOW) == Admission()
    assert [r.getMessage().split(";")[0] for r in caplog.records] == [
        "shared channel pauses: Redis does not answer (ConnectionError: Connection refused)",
        "sms: the provider is unavailable (503)",
        "shared channel pauses: Redis answers again after 0.0 s",
        "shared channel pauses: Redis does not answer (ConnectionError: Connection refused)",
    ]
