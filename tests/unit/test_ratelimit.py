"""The token bucket: burst, steady rate, refill and fairness, on a clock the test drives."""

from __future__ import annotations

import asyncio
import time

import pytest

from hub.channels.ratelimit import TokenBucket


class FakeClock:
    """Time that moves only when a sleeper sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def bucket(clock: FakeClock, rate: float, burst: int) -> TokenBucket:
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep)


def test_a_full_bucket_serves_the_burst_then_spaces_by_the_rate() -> None:
    clock = FakeClock()
    limiter = bucket(clock, rate=10, burst=3)
    waits = [limiter.delay() for _ in range(6)]
    assert waits == pytest.approx([0, 0, 0, 0.1, 0.2, 0.3])


def test_concurrent_waiters_get_consecutive_slots_in_call_order() -> None:
    clock = FakeClock()
    limiter = bucket(clock, rate=4, burst=1)

    async def main() -> None:
        await asyncio.gather(*(limiter.acquire() for _ in range(5)))

    asyncio.run(main())
    # The first is free; the others sleep 1/4 s apart, none at the same moment.
    assert clock.slept == pytest.approx([0.25, 0.5, 0.75, 1.0])


def test_idle_time_refills_up_to_the_burst_and_no_further() -> None:
    clock = FakeClock()
    limiter = bucket(clock, rate=2, burst=2)
    assert [limiter.delay() for _ in range(3)] == pytest.approx([0, 0, 0.5])
    clock.now += 60  # a long quiet spell must not bank 120 tokens
    assert [limiter.delay() for _ in range(4)] == pytest.approx([0, 0, 0.5, 1.0])


def test_a_partly_refilled_bucket_waits_only_for_the_remainder() -> None:
    clock = FakeClock()
    limiter = bucket(clock, rate=10, burst=1)
    assert limiter.delay() == 0
    clock.now += 0.04
    assert limiter.delay() == pytest.approx(0.06)


def test_no_window_ever_holds_more_than_burst_plus_rate_times_length() -> None:
    clock = FakeClock()
    rate, burst = 50.0, 5
    limiter = bucket(clock, rate=rate, burst=burst)
    start = clock.now
    times = [start + limiter.delay() for _ in range(500)]
    for i, first in enumerate(times):
        for j in range(i + 1, len(times)):
            span = times[j] - first
            assert j - i + 1 <= burst + rate * span + 1e-9


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_nonsense_limits_are_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="must be"):
        TokenBucket(rate, burst)


def test_with_the_real_clock_twenty_one_tokens_at_200_per_second_take_100_ms() -> None:
    limiter = TokenBucket(200, 1)

    async def main() -> float:
        started = time.monotonic()
        await asyncio.gather(*(limiter.acquire() for _ in range(21)))
        return time.monotonic() - started

    assert asyncio.run(main()) >= 0.1 - 0.005  # sleeps may end a hair early on some clocks
