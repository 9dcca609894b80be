"""Benchmark SmsChannel: N SMS through the twilio library to the Twilio peer in another process.

    .venv/bin/python bench/twilio_send.py [--count 5000] [--rate 400] [--concurrency 32] [--uvloop]

Runs the load twice: at the configured per-number rate (the token bucket paces it) and with
the bucket out of the way (the channel's own ceiling). Prints messages/s and CPU ms per message
of this process and of the peer (from /proc), and checks that the peer accepted every message
and saw nothing that breaks Twilio's OpenAPI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from hub.channels.base import OutgoingMessage
from hub.channels.twilio import SmsChannel, TwilioOptions
from hub.domain import Channel

ROOT = Path(__file__).resolve().parent.parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of another process, from /proc (Linux); 0 where there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


async def run(*, peer: dict[str, Any], count: int, rate: float, concurrency: int) -> float:
    options = TwilioOptions(
        _env_file=None,
        twilio_account_sid=peer["account_sid"],
        twilio_auth_token=peer["auth_token"],
        twilio_from="+15005550006",
        twilio_base_url=peer["url"],
        twilio_rate_per_second=rate,
        twilio_max_concurrency=concurrency,
    )
    channel = SmsChannel.from_options(options)
    failures = 0

    async def worker(first: int) -> None:
        nonlocal failures
        for n in range(first, count, concurrency):
            to = f"+1555{n % 10_000_000:07d}"
            sms = OutgoingMessage(
                delivery_id=n,
                channel=Channel.SMS,
                key=f"k{n}",
                to=to,
                text=f"Your code is {n % 1_000_000:06d}",
            )
            try:
                await channel.send(sms)
            except Exception:
                failures += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker(first) for first in range(concurrency)))
    elapsed = time.perf_counter() - started
    await channel.aclose()
    if failures:
        raise SystemExit(f"{failures} of {count} sends failed")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=400.0, help="per-number messages/s")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--uvloop", action="store_true", help="run this process on uvloop")
    args = parser.parse_args()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.peers.twilio"],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    peer = json.loads(process.stdout.readline())
    runner: Any = asyncio.run
    if args.uvloop:
        import uvloop

        runner = uvloop.run
    results = {}
    for label, rate in (("paced", args.rate), ("unpaced", 1e9)):
        cpu, peer_cpu = time.process_time(), cpu_seconds(process.pid)
        elapsed = runner(run(peer=peer, count=args.count, rate=rate, concurrency=args.concurrency))
        results[label] = {
            "rate_limit": rate if rate < 1e9 else None,
            "messages_per_s": round(args.count / elapsed),
            "cpu_ms_per_message": round((time.process_time() - cpu) * 1000 / args.count, 3),
            "peer_cpu_ms_per_message": round(
                (cpu_seconds(process.pid) - peer_cpu) * 1000 / args.count, 3
            ),
        }
    process.stdin.close()
    final = json.loads(process.stdout.readline())
    process.wait(10)
    assert final["accepted"] == 2 * args.count, final
    assert final["violations"] == [], final["violations"][:5]
    print(f"{args.count} SMS per run, concurrency {args.concurrency}, uvloop {args.uvloop}")
    for label, result in results.items():
        print(f"{label:<8} " + "  ".join(f"{k}={v}" for k, v in result.items()))
    print(
        json.dumps({"bench": "twilio_send", "count": args.count, "uvloop": args.uvloop, **results})
    )


if __name__ == "__main__":
    main()
