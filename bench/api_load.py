"""Benchmark `POST /v1/notifications` under wrk: requests/s and p50/p99 latency.

    .venv/bin/python bench/api_load.py [--seconds 15] [--connections 16 64]
        [--database-url postgresql+psycopg://...] [--broker-url redis://...]

Runs `hub serve` (one uvicorn process) and drives it with wrk (Debian's `wrk`; `make bench`
installs it), each request a transactional notification to one named contact. With
--broker-url the API only accepts and enqueues, as an API replica does in production (no
worker runs, so nothing else takes the CPU); without it the embedded default also fans out
and "sends" to the capture sink in the same process. Each connection count runs for
--seconds after a 3-second warm-up; the server's CPU per request is read from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fanout import HUB, RESULTS, proc_stats
from hub_runner import start_hub, stop_hub
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

# wrk's Lua: one body for all, a fresh Idempotency-Key per request (a retried request with
# the same key would be answered from the replay cache, which is not what is measured).
SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
wrk.body = '%(body)s'
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end
local n = 0
request = function()
  n = n + 1
  wrk.headers["Idempotency-Key"] = string.format("%%s-%%d-%%d", run, tid, n)
  return wrk.format()
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def database(url: str | None, workdir: Path) -> str:
    if url is None:
        return f"sqlite:///{workdir}/hub.db"
    name = f"hub_bench_{uuid.uuid4().hex[:8]}"
    with create_engine(url, isolation_level="AUTOCOMMIT").connect() as admin:
        admin.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def prepare(base: str, workdir: Path, env: dict[str, str]) -> str:
    """A key, a topic and a contact; returns the key."""
    created = subprocess.run(
        [HUB, "apikey", "create", "load", "--scope", "notify", "--scope", "contacts"],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"})
    api.put("/v1/contacts/ann", json={"email": "ann@example.com"}).raise_for_status()
    return key


def wrk(
    base: str, key: str, connections: int, seconds: int, *, warmed: Callable[[], None]
) -> dict[str, float]:
    """`warmed` is called between the warm-up and the measured run."""
    body = json.dumps(
        {
            "topic": "receipts",
            "recipients": ["ann"],
            "content": {"": {"email_subject": "Receipt {{ data.n }}", "email_text": "Thanks"}},
            "data": {"n": 1},
        }
    )
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    run = uuid.uuid4().hex[:12]  # keys differ between runs and threads
    script.write_text(f'run = "{run}"\n' + SCRIPT % {"key": key, "body": body})
    threads = min(connections, 2)
    command = ["wrk", f"-t{threads}", f"-c{connections}", "--latency", "-s", str(script), base]
    warm_up = [*command[:-1], "-d3s", f"{base}/v1/notifications"]
    subprocess.run(warm_up, capture_output=True, check=True)
    warmed()
    out = subprocess.run(
        [*command[:-1], f"-d{seconds}s", f"{base}/v1/notifications"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return parse(out)


def parse(out: str) -> dict[str, float]:
    """wrk's own figures: requests/s, latency percentiles, and non-2xx answers."""

    def ms(label: str) -> float:
        found = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if found is None:
            raise SystemExit(f"wrk printed no {label} latency:\n{out}")
        return float(found.group(1)) * _UNITS[found.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {
        "requests_per_second": float(rate.group(1)) if rate else 0.0,
        "requests": float(total.group(1)) if total else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": float(bad.group(1)) if bad else 0.0,
        "socket_errors": errors.group(1) if errors else "none",  # type: ignore[dict-item]
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-api-"))
    url = database(args.database_url, workdir)
    env = os.environ | {"HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING"}
    if args.broker_url:
        env["HUB_BROKER_URL"] = args.broker_url
        env["HUB_BROKER_NAMESPACE"] = f"hub-bench-{uuid.uuid4().hex[:8]}"
    if url.startswith("postgresql"):
        subprocess.run([HUB, "db", "upgrade"], env=env, cwd=workdir, check=True)
    server, base = start_hub(env, workdir)
    rows = []
    try:
        key = prepare(base, workdir, env)
        admin = (
            subprocess.run(
                [HUB, "apikey", "create", "admin", "--scope", "admin"],
                env=env,
                cwd=workdir,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        topic = {"name": "Receipts", "allowed_channels": ["email"], "required": True}
        httpx.put(
            f"{base}/v1/topics/receipts", json=topic, headers={"Authorization": f"Bearer {admin}"}
        ).raise_for_status()
        for connections in args.connections:
            cpu_before = 0.0

            def warmed() -> None:
                nonlocal cpu_before
                cpu_before = proc_stats(server.pid)[0]

            figures = wrk(base, key, connections, args.seconds, warmed=warmed)
            cpu_after, peak = proc_stats(server.pid)
            served = figures["requests"] or 1
            rows.append(
                {
                    "connections": connections,
                    **figures,
                    # the measured run's CPU over its requests (the warm-up's left out)
                    "server_cpu_ms_per_request": round(1000 * (cpu_after - cpu_before) / served, 3),
                    "server_peak_rss_mb": round(peak / 2**20),
                }
            )
            print(f"  {connections} connections: {figures}", flush=True)
    finally:
        stop_hub(server)
    return {
        "benchmark": "api_load",
        "endpoint": "POST /v1/notifications",
        "database": make_url(url).get_backend_name(),
        "broker": "redis (no workers)" if args.broker_url else "in-process (embedded)",
        "seconds": args.seconds,
        "runs": rows,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    result = run(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    name = f"api_load-{result['database']}-{'redis' if 'redis' in result['broker'] else 'embedded'}"
    (RESULTS / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("| connections | db | broker | requests/s | p50 ms | p99 ms | non-2xx | CPU ms/request |")
    print("|---|---|---|---|---|---|---|---|")
    for row in result["runs"]:
        print(
            f"| {row['connections']} | {result['database']} | {result['broker']} | "
            f"{row['requests_per_second']:,.0f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} | "
            f"{row['non_2xx']:.0f} | {row['server_cpu_ms_per_request']} |"
        )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
