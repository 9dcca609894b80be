"""Benchmark WebhookChannel: N signed webhooks to a verifying peer in another process.

    .venv/bin/python bench/webhook_send.py [--count 10000] [--concurrency 64] [--uvloop]

Runs the same load twice in one process, once over the aiohttp transport the channel uses and
once over httpx's default transport (httpcore), and prints deliveries/s and CPU ms per request
of this process (the peer's CPU is not counted), checking that the peer verified every one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from hub.channels.base import DeliveryError, OutgoingMessage
from hub.channels.webhook import WebhookChannel, WebhookOptions
from hub.domain import Channel

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps(
    {"type": "invoice.paid", "timestamp": "2025-01-01T00:00:00Z", "data": {"id": 42, "total": 99}}
).encode()


def start_peer() -> tuple[subprocess.Popen[str], str, str]:
    peer = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.webhooks"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert peer.stdout is not None
    started = json.loads(peer.stdout.readline())
    return peer, started["url"], started["secret"]


def peer_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_peer/stats") as answer:
        stats: dict[str, int] = json.load(answer)
        return stats


async def run(
    *, base: str, secret: str, count: int, concurrency: int, transport: str
) -> dict[str, Any]:
    url = f"{base}/hook"
    options = WebhookOptions(
        webhook_secret=SecretStr(secret),
        webhook_allow_private=True,
        webhook_max_connections=concurrency,
    )
    custom = None
    if transport == "httpx-default":
        limits = httpx.Limits(max_connections=concurrency)
        custom = httpx.AsyncHTTPTransport(limits=limits)
    sender = WebhookChannel(options, transport=custom)
    failures = 0

    async def worker(start: int, step: int, total: int) -> None:
        nonlocal failures
        for n in range(start, total, step):
            key = f"msg_{transport}_{n}"
            message = OutgoingMessage(
                delivery_id=n, channel=Channel.WEBHOOK, key=key, to=url, body=BODY
            )
            try:
                await sender.send(message)
            except DeliveryError:
                failures += 1  # counted and shown: the peer should answer every one

    # Warm up: open the pool's connections and import lazily loaded code.
    await asyncio.gather(*(worker(i, concurrency, concurrency * 4) for i in range(concurrency)))
    before = peer_stats(base)["verified"]  # blocking, but nothing else is running now
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(i, concurrency, count) for i in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await sender.aclose()
    verified = peer_stats(base)["verified"] - before
    return {
        "transport": transport,
        "count": count,
        "failures": failures,
        "deliveries_per_s": round(count / wall),
        "cpu_ms_per_request": round(cpu * 1000 / count, 3),
        "wall_s": round(wall, 2),
        "peer_verified": verified,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--uvloop", action="store_true", help="run the sender on uvloop")
    args = parser.parse_args()
    peer, base, secret = start_peer()
    runner: Any = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    results = []
    try:
        for transport in ("aiohttp", "httpx-default"):
            result = runner(
                run(
                    base=base,
                    secret=secret,
                    count=args.count,
                    concurrency=args.concurrency,
                    transport=transport,
                )
            )
            results.append(result)
    finally:
        assert peer.stdin is not None
        peer.stdin.close()
        peer.wait(10)
    header = ("transport", "deliveries/s", "CPU ms/req", "verified", "failed")
    print("{:<14} {:>12} {:>10} {:>9} {:>6}".format(*header))
    for r in results:
        print(
            f"{r['transport']:<14} {r['deliveries_per_s']:>12} {r['cpu_ms_per_request']:>10} "
            f"{r['peer_verified']:>9} {r['failures']:>6}"
        )
    print(json.dumps({"concurrency": args.concurrency, "uvloop": args.uvloop, "runs": results}))


if __name__ == "__main__":
    main()
