"""The rate limit and the channel pauses that every process of a hub shares through Redis
(RELIABILITY 30): the GCRA script on a clock the test drives, two "processes" (two clients,
two loops) on one budget, pauses seen across them, and what happens while Redis is away.

Each instance below has its own Redis connection, as each worker process has; the two-process
test with real `hub worker` processes is tests/faults/test_pacing_across_workers.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis
from prometheus_client import REGISTRY

from hub.channels.base import OutgoingMessage, Receipt, RetryableDeliveryError
from hub.channels.twilio import SmsChannel, TwilioOptions
from hub.dispatch.pause import Admission
from hub.dispatch.shared_pause import SharedPauses
from hub.dispatch.shared_rate import SharedBucket, SharedPacer
from hub.dispatch.shared_store import async_client, sync_client
from hub.domain import Channel
from tests.conftest import REDIS_URL, service_missing
from tests.faults.private_redis import PrivateRedis
from tests.peers.twilio import TwilioPeer

JITTER = 0.25  # seconds a grant may be seen late when both cores are busy

pytestmark = pytest.mark.redis
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def namespace() -> Iterator[str]:
    """A namespace of this test's own on the shared test Redis; its keys go at the end."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        service_missing(f"Redis at {REDIS_URL}", exc)
    name = f"hub-test-{uuid.uuid4().hex[:8]}"
    yield name
    store = redis.Redis.from_url(REDIS_URL)
    for key in store.scan_iter(f"{name}*"):
        store.delete(key)
    store.close()


class DrivenClock:
    """Seconds the test moves by hand; the script gets them instead of Redis's TIME."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def waits(bucket: SharedBucket, count: int) -> list[float | None]:
    """Reserve `count` times in a row: seconds to wait for each, None where refused."""

    async def main() -> list[float | None]:
        found: list[float | None] = []
        for _ in range(count):
            reserved, wait = await bucket.reserve()
            found.append(wait / 1e6 if reserved else None)
        await bucket.pacer.aclose()
        return found

    return asyncio.run(main())


def driven(
    namespace: str, clock: DrivenClock, rate: float, burst: int, **pacer: float
) -> SharedBucket:
    """A bucket of the number's SMS budget, on a connection (a "process") of its own."""
    shared = SharedPacer(async_client(REDIS_URL), namespace=namespace, **pacer)
    key = f"{namespace}:pace:twilio-sms:+15005550006"
    return SharedBucket(shared, key, rate, burst, clock=clock)


# The GCRA script, its clock driven by the test --------------------------------------------


def test_a_full_budget_serves_the_burst_then_spaces_by_the_rate(namespace: str) -> None:
    clock = DrivenClock()
    found = waits(driven(namespace, clock, rate=10, burst=3), 6)
    assert found == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])


def test_idle_time_refills_up_to_the_burst_and_no_further(namespace: str) -> None:
    clock = DrivenClock()
    assert waits(driven(namespace, clock, rate=2, burst=2), 3) == pytest.approx([0, 0, 0.5])
    clock.now += 60  # a quiet minute must not bank 120 sends
    assert waits(driven(namespace, clock, rate=2, burst=2), 4) == pytest.approx([0, 0, 0.5, 1])


def test_a_partly_refilled_budget_waits_only_for_the_remainder(namespace: str) -> None:
    clock = DrivenClock()
    assert waits(driven(namespace, clock, rate=10, burst=1), 1) == [0]
    clock.now += 0.04
    assert waits(driven(namespace, clock, rate=10, burst=1), 1) == pytest.approx([0.06])


def test_a_slot_beyond_the_horizon_is_refused_and_reserves_nothing(namespace: str) -> None:
    clock = DrivenClock()
    found = waits(driven(namespace, clock, rate=1, burst=1, horizon=2.5), 5)
    assert found == [0, 1, 2, None, None], "three slots fit within 2.5 s; the rest come back"
    clock.now += 1
    found = waits(driven(namespace, clock, rate=1, burst=1, horizon=2.5), 2)
    assert found == [2, None], "the refusals took no slot: the next is at +3 s, 2 s from now"


def test_the_budget_is_the_keys_wherever_it_is_asked_from(namespace: str) -> None:
    """Pacers with a connection each, as processes have, take the next slots in turn."""
    clock = DrivenClock()
    found = [*waits(driven(namespace, clock, 4, 1), 2), *waits(driven(namespace, clock, 4, 1), 3)]
    assert found == pytest.approx([0, 0.25, 0.5, 0.75, 1.0])
    other = SharedPacer(async_client(REDIS_URL), namespace=namespace)
    voice = SharedBucket(other, f"{namespace}:pace:twilio-voice:+15005550006", 4, clock=clock)
    assert waits(voice, 1) == [0], "calls from the number have a budget of their own"


def test_the_budget_forgets_itself_once_full_again(namespace: str) -> None:
    clock = DrivenClock()
    bucket = driven(namespace, clock, rate=2, burst=1)
    waits(bucket, 3)  # the schedule now runs 1.5 s ahead of the driven clock
    ttl = redis.Redis.from_url(REDIS_URL).pttl(bucket.key)
    assert 1000 < ttl <= 2500, "kept while it matters (and a second more), then gone"


# Real time, two "processes" ---------------------------------------------------------------


def test_two_pacers_on_their_own_loops_keep_one_rate_by_the_real_clock(namespace: str) -> None:
    rate, per_process = 50.0, 30
    granted: list[float] = []
    lock = threading.Lock()

    def process() -> None:
        async def main() -> None:
            pacer = SharedPacer(async_client(REDIS_URL), namespace=namespace)
            bucket = pacer.limiter("twilio-sms:+15005550006", rate_per_second=rate)

            async def one() -> None:
                await bucket.acquire()
                with lock:
                    granted.append(time.monotonic())

            await asyncio.gather(*(one() for _ in range(per_process)))
            await pacer.aclose()

        asyncio.run(main())

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    times = sorted(granted)
    assert len(times) == 2 * per_process
    # 60 grants at 50/s are 59 intervals of 20 ms; a second bucket would halve it.
    assert times[-1] - times[0] >= 59 / rate * 0.95
    # In any half second, no more than its share, plus sends a loaded machine wakes late from
    # the window before (up to JITTER); a second bucket would double it.
    busiest = max(sum(1 for t in times if s <= t < s + 0.5) for s in times)
    assert busiest <= rate * (0.5 + JITTER) + 2


def test_two_sms_adapters_with_their_own_pacers_share_the_numbers_rate_at_the_peer(
    namespace: str,
) -> None:
    """The adapter as each worker process builds it, given the hub's shared pacer."""
    rate, per_process = 20.0, 20
    with TwilioPeer() as peer:
        options = TwilioOptions(
            _env_file=None,
            twilio_account_sid=peer.account_sid,
            twilio_auth_token=peer.auth_token,
            twilio_from="+15005550006",
            twilio_base_url=peer.url,
            twilio_rate_per_second=rate,
        )

        def process(offset: int) -> None:
            async def main() -> None:
                pacer = SharedPacer(async_client(REDIS_URL), namespace=namespace)
                channel = SmsChannel.from_options(options, pacer=pacer)
                messages = [
                    OutgoingMessage(
                        delivery_id=n, channel=Channel.SMS, key=f"k{n}", to=f"+1555202{n:04d}",
                        text="Hi",
                    )
                    for n in range(offset, offset + per_process)
                ]  # fmt: skip
                # The first send opens the connection and loads twilio's API modules: out of
                # the measurement, so the peer's clock sees the schedule, not the warm-up.
                await channel.send(replace(messages[0], to=f"+1555203{offset:04d}"))
                results = await asyncio.gather(*(channel.send(m) for m in messages))
                assert all(isinstance(r, Receipt) for r in results)
                await channel.aclose()
                await pacer.aclose()

            asyncio.run(main())

        threads = [threading.Thread(target=process, args=(n * 100,)) for n in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        accepted = peer.wait_for(2 * per_process + 2)
        assert peer.violations == []
    times = sorted(r.at for r in accepted if not str(r.form["To"]).startswith("+1555203"))
    span = times[-1] - times[0]
    # 40 sends at 20/s: 39 intervals of 50 ms, less a little jitter of the peer's clock.
    assert span >= (2 * per_process - 1) / rate - 0.15, f"{(len(times) - 1) / span:.1f}/s"
    assert max(sum(1 for t in times if s <= t < s + 1) for s in times) <= rate * (1 + JITTER) + 2


# Pauses across processes ------------------------------------------------------------------


def boards(namespace: str, count: int = 2, **limits: float) -> list[SharedPauses]:
    """Pause boards with a connection each, as `count` worker processes have."""
    first = limits.pop("first", 0.3)
    return [
        SharedPauses(sync_client(REDIS_URL), namespace=namespace, first=first, **limits)
        for _ in range(count)
    ]


def paused(channel: str) -> float:
    """hub_channel_pauses_total of this process."""
    return REGISTRY.get_sample_value("hub_channel_pauses_total", {"channel": channel}) or 0.0


def later(admission: Admission, now: dt.datetime) -> float:
    assert admission.put_off_until is not None, admission
    return (admission.put_off_until - now).total_seconds()


def test_a_pause_found_by_one_process_stops_the_others_until_one_probe_resumes_all(
    namespace: str,
) -> None:
    a, b, c = boards(namespace, 3, first=0.3)
    counted = paused("sms")
    assert b.admit(Channel.SMS, NOW) == Admission(), "nothing paused yet"
    until = a.trip(Channel.SMS, NOW, why="Twilio answered 503")
    assert 0.29 <= (until - NOW).total_seconds() <= 0.3
    # B and C never met the provider, and hold their batches all the same.
    assert 0.2 < later(b.admit(Channel.SMS, NOW), NOW) <= 0.3
    assert 0.2 < later(c.admit(Channel.SMS, NOW), NOW) <= 0.3
    assert b.admit(Channel.EMAIL, NOW) == Admission(), "only that channel"
    # B's batch that was already out fails too: the same pause, counted once.
    assert b.trip(Channel.SMS, NOW, why="Twilio answered 503") <= until
    assert paused("sms") == counted + 1
    time.sleep(0.35)
    assert c.admit(Channel.SMS, NOW) == Admission(probe=True), "one batch of the hub probes"
    assert later(a.admit(Channel.SMS, NOW), NOW) == pytest.approx(0.3), "the others wait"
    assert later(b.admit(Channel.SMS, NOW), NOW) == pytest.approx(0.3)
    # The probe is refused: twice as long, for everyone.
    again = c.trip(Channel.SMS, NOW, why="Twilio answered 503")
    assert 0.59 <= (again - NOW).total_seconds() <= 0.6
    assert 0.45 < later(a.admit(Channel.SMS, NOW), NOW) <= 0.6
    time.sleep(0.65)
    assert a.admit(Channel.SMS, NOW) == Admission(probe=True)
    a.resume(Channel.SMS, NOW)  # the provider answered A's probe
    assert b.admit(Channel.SMS, NOW) == Admission(), "the resumption is seen by all"
    assert c.admit(Channel.SMS, NOW) == Admission()
    b.trip(Channel.SMS, NOW, why="503")
    assert 0.29 <= later(c.admit(Channel.SMS, NOW), NOW) <= 0.3, "a new outage starts over"


def test_retry_after_and_the_longest_pause_hold_for_everyone(namespace: str) -> None:
    a, b = boards(namespace, first=0.2, longest=1.0)
    a.trip(Channel.VOICE, NOW, why="429", retry_after=0.8)
    assert 0.7 < later(b.admit(Channel.VOICE, NOW), NOW) <= 0.8
    time.sleep(0.85)
    assert b.admit(Channel.VOICE, NOW).probe
    until = b.trip(Channel.VOICE, NOW, why="429")
    assert (until - NOW).total_seconds() <= 1.0, "doubling stops at the longest pause"


def test_a_probe_that_got_no_answer_or_died_lets_another_process_probe(namespace: str) -> None:
    a, b = boards(namespace, first=0.1, longest=0.5)
    a.trip(Channel.EMAIL, NOW, why="421")
    time.sleep(0.15)
    assert a.admit(Channel.EMAIL, NOW).probe
    a.probed(Channel.EMAIL)  # its rows had been claimed elsewhere: nothing was sent
    assert b.admit(Channel.EMAIL, NOW).probe
    # B dies with its probe out: after the longest pause someone else probes.
    assert not a.admit(Channel.EMAIL, NOW).probe
    time.sleep(0.55)
    assert a.admit(Channel.EMAIL, NOW).probe


def test_namespaces_keep_two_hubs_apart(namespace: str) -> None:
    [ours] = boards(namespace, 1)
    [theirs] = boards(f"{namespace}-other", 1)
    ours.trip(Channel.SMS, NOW, why="503")
    assert theirs.admit(Channel.SMS, NOW) == Admission()


# Redis away: fail closed ------------------------------------------------------------------


def test_without_redis_sends_wait_then_go_when_it_is_back_and_never_unpaced(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> tuple[bool, float]:
        pacer = SharedPacer(async_client(private_redis.url), namespace="hub", patience=30)
        bucket = pacer.limiter("twilio-sms:+15005550006", rate_per_second=1)
        await bucket.acquire()  # the first is free
        private_redis.stop()
        started = time.monotonic()
        waiting = asyncio.create_task(bucket.acquire())
        await asyncio.sleep(1.5)
        passed = waiting.done()
        private_redis.start()  # back, and empty
        await asyncio.wait_for(waiting, 10)
        took = time.monotonic() - started
        await pacer.aclose()
        return passed, took

    with caplog.at_level(logging.WARNING, logger="hub.dispatch"):
        passed, took = asyncio.run(main())
    assert not passed, "no send went out unpaced while Redis was away"
    assert 1.5 <= took < 10
    lines = [r.getMessage() for r in caplog.records]
    assert sum("shared rate limit: Redis does not answer" in line for line in lines) == 1
    assert sum("shared rate limit: Redis answers again" in line for line in lines) == 1


def test_a_redis_away_past_the_patience_fails_the_send_as_retryable_without_sending(
    private_redis: PrivateRedis,
) -> None:
    private_redis.stop()

    async def main() -> BaseException | None:
        pacer = SharedPacer(async_client(private_redis.url), namespace="hub", patience=0.5)
        bucket = pacer.limiter("twilio-sms:+15005550006", rate_per_second=1)
        try:
            await bucket.acquire()
        except RetryableDeliveryError as exc:
            return exc
        finally:
            await pacer.aclose()
        return None

    started = time.monotonic()
    error = asyncio.run(main())
    assert isinstance(error, RetryableDeliveryError)
    assert error.unavailable, "the channel pauses instead of spending attempts"
    assert "nothing was sent" in error.message
    assert 0.5 <= time.monotonic() - started < 5


def test_without_redis_each_process_pauses_on_its_own_until_it_is_back(
    private_redis: PrivateRedis,
) -> None:
    board = SharedPauses(sync_client(private_redis.url), namespace="hub", first=5)
    board.trip(Channel.SMS, NOW, why="503")
    private_redis.stop()
    assert board.admit(Channel.SMS, NOW) == Admission(), "what a worker holds goes meanwhile"
    board.trip(Channel.SMS, NOW, why="503")
    assert later(board.admit(Channel.SMS, NOW), NOW) == 5, "paused, by this process alone"
    private_redis.start()  # empty: the pause was lost with it, and the channel runs
    assert board.admit(Channel.SMS, NOW) == Admission()
    board.close()
