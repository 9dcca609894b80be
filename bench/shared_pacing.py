"""Benchmark the cost of pacing one send: this process's token bucket beside the shared one in
Redis (one Lua script, one round trip per acquisition), in the same run.

    .venv/bin/python bench/shared_pacing.py [--count 20000] [--concurrency 1,32] [--redis URL]
                                            [--rate 500] [--uvloop]

The budget is set far above what either can reach (1,000,000/s), so nothing waits for a slot
and the figures are the limiter's own cost: acquisitions per second, wall µs per acquisition
(one caller: the round trip; many: the throughput one process gets), and CPU µs per
acquisition of this process. Then two pacers on connections of their own (two worker
processes) share a budget of `--rate` per second for two seconds, and the achieved rate is
printed beside the limit. Redis keys go under a namespace of their own, deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import redis

from hub.channels.ratelimit import LocalPacer, Pacer
from hub.dispatch.shared_rate import SharedPacer
from hub.dispatch.shared_store import async_client

UNBOUNDED = 1_000_000.0  # per second: never waited for


async def overhead(pacer: Pacer, *, count: int, concurrency: int) -> dict[str, Any]:
    bucket = pacer.limiter(f"bench:{uuid.uuid4().hex}", rate_per_second=UNBOUNDED)

    async def caller(share: int) -> None:
        for _ in range(share):
            await bucket.acquire()

    shares = [count // concurrency + (n < count % concurrency) for n in range(concurrency)]
    await bucket.acquire()  # connect first: the pool's set-up is not a send's cost
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller(share) for share in shares))
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    await pacer.aclose()
    return {
        "acquisitions_per_s": round(count / wall),
        "us_per_acquire": round(wall * 1e6 / count, 1),
        "cpu_us_per_acquire": round(cpu * 1e6 / count, 1),
    }


async def shared_rate(url: str, namespace: str, *, rate: float, seconds: float) -> float:
    """Two pacers, each on its own connection as two processes are, one budget: sends/s."""
    pacers = [SharedPacer(async_client(url), namespace=namespace) for _ in range(2)]
    buckets = [p.limiter("bench:one-number", rate_per_second=rate) for p in pacers]
    granted = 0
    deadline = time.monotonic() + seconds

    async def caller(bucket: Any) -> None:
        nonlocal granted
        while time.monotonic() < deadline:
            await bucket.acquire()
            granted += 1

    started = time.monotonic()
    await asyncio.gather(*(caller(b) for b in buckets for _ in range(16)))
    elapsed = time.monotonic() - started
    for pacer in pacers:
        await pacer.aclose()
    return granted / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--concurrency", default="1,32", help="callers at once, comma-separated")
    parser.add_argument("--rate", type=float, default=500.0, help="the shared budget's rate")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--uvloop", action="store_true", help="as the send engine runs")
    args = parser.parse_args()
    runner: Any = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    namespace = f"hub-bench-{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {}
    try:
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for label, make in (
                ("in-process", LocalPacer),
                ("shared", lambda: SharedPacer(async_client(args.redis), namespace=namespace)),
            ):
                result = runner(
                    overhead(make(), count=args.count, concurrency=concurrency)  # type: ignore[no-untyped-call]
                )
                results[f"{label}/{concurrency}"] = result
                print(
                    f"{label:<10} callers={concurrency:<3} "
                    + "  ".join(f"{k}={v}" for k, v in result.items()),
                    flush=True,
                )
        achieved = runner(shared_rate(args.redis, namespace, rate=args.rate, seconds=2.0))
        results["two_pacers"] = {"limit_per_s": args.rate, "achieved_per_s": round(achieved, 1)}
        print(f"two pacers, one budget of {args.rate:.0f}/s: {achieved:.1f} sends/s", flush=True)
    finally:
        store = redis.Redis.from_url(args.redis)
        for key in store.scan_iter(f"{namespace}*"):
            store.delete(key)
    summary = {"bench": "shared_pacing", "count": args.count, "uvloop": args.uvloop}
    print(json.dumps(summary | results))


if __name__ == "__main__":
    main()
