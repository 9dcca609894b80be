"""Benchmark `POST /v1/notifications/batch`: notifications accepted per second, in batches.

    .venv/bin/python bench/api_batch.py [--batches 40] [--size 1000] [--clients 4]
        [--recipients 1000] [--broker-url redis://127.0.0.1:6379/11] [--no-embedded]
        [--single-seconds 0] [--database-url postgresql+psycopg://...]

Each run starts `hub serve` on a fresh database and posts `--batches` batches (two of them
warm-up, not counted) of `--size` transactional notifications, each to one named contact,
with inline content and its own idempotency key, from `--clients` threads at once, each
with its own connection and its bodies encoded before the clock starts, so the server always
has a batch waiting. The figures, per run:

- **accepted/s**: notifications answered 202 (committed) per second, from the first POST to
  the last answer.
- **batch p50/p99 ms**: one 1,000-item request's latency, as a client waits for it.
- **CPU µs/notification**: the server process's CPU (user + system, from /proc, its
  children included) over the same span, divided by the notifications accepted.
- **sent/s** (embedded, with `--until-sent`): notifications accepted *and* fanned out
  *and* sent to the capture sink per second, the clock running from the first POST until
  the last delivery is recorded as sent: what the one process sustains end to end (the
  workers catch up long after the last 202, so this takes minutes).

Two runs: (a) **embedded**, the default as shipped: SQLite, and the in-process broker and
workers, which fan out and "send" each notification in the same process, at the same time
as the API accepts more (so accepted/s is the API's share of one process while the
workers are busy, and their CPU is in the CPU figure); (b) with `--broker-url`,
**API only**, as a production API replica: the fan-out jobs go to Redis and no worker runs
in the process (the CPU figure includes the enqueue of one job per notification).
`--single-seconds` then POSTs single notifications from 8 threads for that long, for the
rate beside it (bench/api_load.py measures the single POST properly, under wrk). The table
and each run's JSON are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from api_load import database
from fanout import HUB, RESULTS, proc_stats
from hub_runner import start_hub, stop_hub
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from hub.db.models import Delivery
from hub.domain import DeliveryState

CONTENT = {"": {"email_subject": "Receipt {{ data.n }}", "email_text": "Thanks"}}


def prepare(base: str, workdir: Path, env: dict[str, str], recipients: int) -> str:
    """A key that may notify, a required transactional topic, `recipients` contacts."""

    def key(name: str, *scopes: str) -> str:
        flags = [part for scope in scopes for part in ("--scope", scope)]
        created = subprocess.run(
            [HUB, "apikey", "create", name, *flags],
            env=env,
            cwd=workdir,
            capture_output=True,
            text=True,
            check=True,
        )
        return created.stdout.strip().splitlines()[-1]

    admin = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key('a', 'admin')}"})
    topic = {
        "name": "Receipts",
        "allowed_channels": ["email"],
        "default_channels": ["email"],
        "category": "transactional",
        "required": True,
    }
    admin.put("/v1/topics/receipts", json=topic).raise_for_status()
    notify = key("batch", "notify")
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {notify}"}, timeout=120)
    # The people arrive named inline, 1,000 to a batch (a use of the feature, and quick).
    for start in range(0, recipients, 1000):
        people = [
            {"external_id": f"u-{n}", "email": f"u{n}@example.com"}
            for n in range(start, min(start + 1000, recipients))
        ]
        body = {"topic": "receipts", "recipients": people, "content": CONTENT, "data": {"n": 0}}
        api.post("/v1/notifications", json=body).raise_for_status()
    return notify


def batches(count: int, size: int, recipients: int) -> list[bytes]:
    """Encoded before the clock starts: the client's JSON work is not the server's."""
    run = uuid.uuid4().hex[:8]
    bodies = []
    for b in range(count):
        items = [
            {
                "topic": "receipts",
                "recipients": [f"u-{(b * size + i) % recipients}"],
                "content": CONTENT,
                "data": {"n": b * size + i},
                "idempotency_key": f"{run}-{b}-{i}",
            }
            for i in range(size)
        ]
        bodies.append(json.dumps({"notifications": items}).encode())
    return bodies


def post_all(base: str, key: str, bodies: list[bytes], clients: int) -> tuple[float, list[float]]:
    """Wall seconds for every batch, and each batch's latency in ms."""
    local = threading.local()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(body: bytes) -> float:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, headers=headers, timeout=120)
        started = time.perf_counter()
        answer = local.client.post("/v1/notifications/batch", content=body)
        if answer.status_code != 202 or answer.json()["rejected"]:
            raise SystemExit(f"batch refused: {answer.status_code} {answer.text[:500]}")
        return 1000 * (time.perf_counter() - started)

    with ThreadPoolExecutor(clients) as pool:
        started = time.perf_counter()
        latencies = list(pool.map(post, bodies))
        return time.perf_counter() - started, latencies


def single_rate(base: str, key: str, seconds: float) -> float:
    """Single POSTs per second from 8 threads (each with its own key), for comparison."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"topic": "receipts", "recipients": ["u-0"], "content": CONTENT, "data": {"n": 1}}
    deadline = time.monotonic() + seconds
    done = [0] * 8

    def loop(slot: int) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            while time.monotonic() < deadline:
                key_header = {"Idempotency-Key": uuid.uuid4().hex}
                client.post("/v1/notifications", json=body, headers=key_header).raise_for_status()
                done[slot] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(slot,)) for slot in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def delivered(url: str) -> int:
    """Deliveries the embedded workers have recorded as sent (or past: delivered)."""
    engine = create_engine(url)
    try:
        with engine.connect() as db:
            query = select(func.count()).where(
                Delivery.state.in_([DeliveryState.SENT, DeliveryState.DELIVERED])
            )
            return int(db.scalar(query) or 0)
    finally:
        engine.dispose()


def run(args: argparse.Namespace, broker_url: str | None) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-batch-"))
    url = database(args.database_url, workdir)
    env = os.environ | {"HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING"}
    if broker_url:
        env["HUB_BROKER_URL"] = broker_url
        env["HUB_BROKER_NAMESPACE"] = f"hub-bench-{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        subprocess.run([HUB, "db", "upgrade"], env=env, cwd=workdir, check=True)
    server, base = start_hub(env, workdir)
    sent_per_second = None
    try:
        key = prepare(base, workdir, env, args.recipients)
        bodies = batches(args.batches, args.size, args.recipients)
        post_all(base, key, bodies[:2], 1)  # warm-up: the code paths, the caches
        if not broker_url:  # the warm-up's deliveries out of the way first
            wait_for(url, 2 * args.size + args.recipients, timeout=120)
        sent_before = 0 if broker_url else delivered(url)
        cpu_before = proc_stats(server.pid)[0]
        started = time.perf_counter()
        seconds, latencies = post_all(base, key, bodies[2:], args.clients)
        cpu_after, peak = proc_stats(server.pid)
        accepted = args.size * (args.batches - 2)
        if not broker_url and args.until_sent:
            wait_for(url, sent_before + accepted, timeout=1800)
            sent_per_second = accepted / (time.perf_counter() - started)
        single = single_rate(base, key, args.single_seconds) if args.single_seconds else None
    finally:
        stop_hub(server)
    ordered = sorted(latencies)
    return {
        "benchmark": "api_batch",
        "endpoint": "POST /v1/notifications/batch",
        "database": make_url(url).get_backend_name(),
        "broker": "redis, API only" if broker_url else "in-process (embedded, workers on)",
        "batch_size": args.size,
        "batches": args.batches - 2,
        "clients": args.clients,
        "notifications": accepted,
        "seconds": round(seconds, 3),
        "notifications_per_second": round(accepted / seconds),
        "batch_p50_ms": round(statistics.median(ordered), 1),
        "batch_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "server_cpu_us_per_notification": round(1e6 * (cpu_after - cpu_before) / accepted, 1),
        "sent_per_second": round(sent_per_second) if sent_per_second else None,
        "server_peak_rss_mb": round(peak / 2**20),
        "single_post_per_second": round(single) if single else None,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def wait_for(url: str, sent: int, *, timeout: float) -> None:
    """Until `sent` deliveries are recorded as sent."""
    deadline = time.monotonic() + timeout
    while delivered(url) < sent:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {delivered(url)} of {sent} deliveries sent in {timeout} s")
        time.sleep(0.05)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| db | broker | batch | clients | accepted/s | batch p50 ms | batch p99 ms "
        "| CPU µs/notification | sent/s | single POST/s | load average |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        sent, single = r["sent_per_second"], r["single_post_per_second"]
        lines.append(
            f"| {r['database']} | {r['broker']} | {r['batch_size']:,} | {r['clients']} | "
            f"{r['notifications_per_second']:,} | {r['batch_p50_ms']} | {r['batch_p99_ms']} | "
            f"{r['server_cpu_us_per_notification']} | {f'{sent:,}' if sent else '-'} | "
            f"{f'{single:,}' if single else '-'} | "
            f"{' '.join(f'{load:.2f}' for load in r['load_average'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batches", type=int, default=40, help="including 2 of warm-up")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--single-seconds", type=float, default=0.0)
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url", help="also run API only, enqueuing to this Redis")
    parser.add_argument("--no-embedded", action="store_true", help="only the --broker-url run")
    parser.add_argument(
        "--until-sent", action="store_true", help="embedded: also wait for every delivery (sent/s)"
    )
    args = parser.parse_args()
    if args.batches < 3:
        parser.error("--batches must be at least 3 (two warm up)")
    if args.no_embedded and not args.broker_url:
        parser.error("--no-embedded needs --broker-url")
    runs = ([] if args.no_embedded else [None]) + ([args.broker_url] if args.broker_url else [])
    results = []
    RESULTS.mkdir(exist_ok=True)
    for broker_url in runs:
        result = run(args, broker_url)
        results.append(result)
        name = f"api_batch-{result['database']}-{'redis' if broker_url else 'embedded'}"
        (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result))
    print(table(results))


if __name__ == "__main__":
    main()
