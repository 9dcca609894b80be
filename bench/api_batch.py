"""Benchmark `POST /v1/notifications/batch`: notifications accepted per second, in batches.

    .venv/bin/python bench/api_batch.py [--batches 40] [--size 1000] [--clients 2]
        [--recipients 1000] [--single-seconds 5] [--database-url postgresql+psycopg://...]
        [--broker-url redis://...]

Runs `hub serve` (embedded default: SQLite, in-process broker and workers, which fan out and
"send" to the capture sink in the same process as the API) and posts `--batches` batches of
`--size` transactional notifications, each to one named contact and with its own idempotency
key, from `--clients` threads at once. The clock runs from the first POST to the last 202;
the server's CPU over the same span is read from /proc. With `--single-seconds`, the same
notification is then POSTed one per request from 8 threads for that long, for the rate
beside it (bench/api_load.py measures the single POST properly, under wrk).
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
from sqlalchemy.engine import make_url

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


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-batch-"))
    url = database(args.database_url, workdir)
    env = os.environ | {"HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING"}
    if args.broker_url:
        env["HUB_BROKER_URL"] = args.broker_url
        env["HUB_BROKER_NAMESPACE"] = f"hub-bench-{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        subprocess.run([HUB, "db", "upgrade"], env=env, cwd=workdir, check=True)
    server, base = start_hub(env, workdir)
    try:
        key = prepare(base, workdir, env, args.recipients)
        bodies = batches(args.batches, args.size, args.recipients)
        post_all(base, key, bodies[:2], 1)  # warm-up: the code paths, the caches
        cpu_before = proc_stats(server.pid)[0]
        seconds, latencies = post_all(base, key, bodies[2:], args.clients)
        cpu_after, peak = proc_stats(server.pid)
        accepted = args.size * (args.batches - 2)
        single = single_rate(base, key, args.single_seconds) if args.single_seconds else None
    finally:
        stop_hub(server)
    ordered = sorted(latencies)
    return {
        "benchmark": "api_batch",
        "endpoint": "POST /v1/notifications/batch",
        "database": make_url(url).get_backend_name(),
        "broker": "redis (no workers)" if args.broker_url else "in-process (embedded)",
        "batch_size": args.size,
        "batches": args.batches - 2,
        "clients": args.clients,
        "notifications": accepted,
        "seconds": round(seconds, 3),
        "notifications_per_second": round(accepted / seconds),
        "batch_p50_ms": round(statistics.median(ordered), 1),
        "batch_p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 1),
        "server_cpu_us_per_notification": round(1e6 * (cpu_after - cpu_before) / accepted, 1),
        "server_peak_rss_mb": round(peak / 2**20),
        "single_post_per_second": round(single) if single else None,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=40, help="including 2 of warm-up")
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--recipients", type=int, default=1000)
    parser.add_argument("--single-seconds", type=float, default=5.0)
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    args = parser.parse_args()
    if args.batches < 3:
        parser.error("--batches must be at least 3 (two warm up)")
    result = run(args)
    RESULTS.mkdir(exist_ok=True)
    name = (
        f"api_batch-{result['database']}-{'redis' if 'redis' in result['broker'] else 'embedded'}"
    )
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        "| db | broker | batch | clients | notifications/s | batch p50 ms | batch p99 ms "
        "| CPU µs/notification | single POST/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    single = result["single_post_per_second"]
    print(
        f"| {result['database']} | {result['broker']} | {result['batch_size']:,} | "
        f"{result['clients']} | {result['notifications_per_second']:,} | "
        f"{result['batch_p50_ms']} | {result['batch_p99_ms']} | "
        f"{result['server_cpu_us_per_notification']} | {f'{single:,}' if single else '-'} |"
    )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
