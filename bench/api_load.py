"""Benchmark `POST /v1/notifications` under wrk beside the minimal accept path, same run.

    .venv/bin/python bench/api_load.py [--seconds 15] [--connections 16 64]
        [--database-url postgresql+psycopg://...] [--broker-url redis://...]

Runs `hub serve` (one uvicorn process) and drives it with wrk (Debian's `wrk`; `make bench`
installs it), each request a transactional notification to one named contact with its own
Idempotency-Key. With --broker-url the API only accepts and enqueues, as an API replica does
in production (no worker runs, so nothing else takes the CPU); without it the embedded
default also fans out and "sends" to the capture sink in the same process. Then the same
load against bench/api_reference.py (the accept path done minimally: issue 19's reference)
on a database of the same kind, so the ratio between them is measured on one machine in one
run. Each connection count runs for --seconds after a 3-second warm-up; each server's CPU
per request is read from /proc.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
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
# the same key would be answered from the replay cache, which is not what is measured). Each
# wrk run writes its own script with its own `run`: the warm-up's keys are not reused.
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
    url: str, key: str, connections: int, seconds: int, *, warmed: Callable[[], None]
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
    threads = min(connections, 2)

    def run(duration: int) -> str:
        script = Path(tempfile.mkstemp(suffix=".lua")[1])
        tag = uuid.uuid4().hex[:12]  # keys differ between runs and threads
        script.write_text(f'run = "{tag}"\n' + SCRIPT % {"key": key, "body": body})
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
        try:
            return subprocess.run(
                [*command, "-s", str(script), url], capture_output=True, text=True, check=True
            ).stdout
        finally:
            script.unlink()

    run(3)
    warmed()
    return parse(run(seconds))


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


def measure(pid: int, url: str, key: str, connections: int, seconds: int) -> dict[str, Any]:
    cpu_before = 0.0

    def warmed() -> None:
        nonlocal cpu_before
        cpu_before = proc_stats(pid)[0]

    figures = wrk(url, key, connections, seconds, warmed=warmed)
    cpu_after, peak = proc_stats(pid)
    served = figures["requests"] or 1
    return {
        "connections": connections,
        **figures,
        # the measured run's CPU over its requests (the warm-up's left out)
        "server_cpu_ms_per_request": round(1000 * (cpu_after - cpu_before) / served, 3),
        "server_peak_rss_mb": round(peak / 2**20),
    }


def start_reference(
    database_url: str, broker_url: str | None, key: str
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [
        sys.executable,
        str(Path(__file__).with_name("api_reference.py")),
        "--port",
        str(port),
        "--key",
        key,
        "--database-url",
        database_url,
    ]
    if broker_url:
        command += ["--broker-url", broker_url]
    process = subprocess.Popen(command)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            httpx.get(f"{base}/docs")
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"bench/api_reference.py did not come up on {base}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    hub_rows = []
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
            row = measure(server.pid, f"{base}/v1/notifications", key, connections, args.seconds)
            hub_rows.append(row)
            print(f"  Hub, {connections} connections: {row}", flush=True)
    finally:
        stop_hub(server)
    reference_rows = []
    reference_db = database(args.database_url, workdir).replace("hub.db", "reference.db")
    reference, reference_base = start_reference(reference_db, args.broker_url, key)
    try:
        for connections in args.connections:
            row = measure(
                reference.pid,
                f"{reference_base}/v1/notifications",
                key,
                connections,
                args.seconds,
            )
            reference_rows.append(row)
            print(f"  reference, {connections} connections: {row}", flush=True)
    finally:
        stop_hub(reference)
    return {
        "benchmark": "api_load",
        "endpoint": "POST /v1/notifications",
        "database": make_url(url).get_backend_name(),
        "broker": "redis (no workers)" if args.broker_url else "in-process (embedded)",
        "seconds": args.seconds,
        "runs": hub_rows,
        "reference": reference_rows,
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
    print("| server | connections | requests/s | p50 ms | p99 ms | non-2xx | CPU ms/request |")
    print("|---|---|---|---|---|---|---|")
    where = f"{result['database']}, {result['broker']}"
    for label, rows in (("Hub", result["runs"]), ("reference", result["reference"])):
        for row in rows:
            print(
                f"| {label} ({where}) | {row['connections']} | "
                f"{row['requests_per_second']:,.0f} | {row['p50_ms']:.1f} | "
                f"{row['p99_ms']:.1f} | {row['non_2xx']:.0f} | "
                f"{row['server_cpu_ms_per_request']} |"
            )
    for hub_row, reference_row in zip(result["runs"], result["reference"], strict=True):
        rate = hub_row["requests_per_second"] / (reference_row["requests_per_second"] or 1)
        cpu = hub_row["server_cpu_ms_per_request"] / (
            reference_row["server_cpu_ms_per_request"] or 1
        )
        print(
            f"{hub_row['connections']} connections: Hub does {rate:.2f}x the reference's "
            f"requests/s at {cpu:.2f}x its CPU per request"
        )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
