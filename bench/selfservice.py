"""Benchmark the self-service preferences page: `hub serve` (embedded SQLite) under load.

Seeds topics and N contacts through the API, then keeps C connections busy for D seconds
with GET /preferences/{token} (a different person each time), then with the save (GET the
form, POST a change). Prints requests/s, p50/p99 latency and the server's CPU per request.
The load generator is Python on the same machine, so it takes a share of the CPU too: the
figures are a floor, not a ceiling.

    .venv/bin/python bench/selfservice.py [--contacts 1000] [--connections 16] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.fanout import HUB, RESULTS, percentile, proc_stats  # noqa: E402
from hub.db import migrate  # noqa: E402
from hub.db.models import Contact  # noqa: E402
from hub.domain import Scope  # noqa: E402
from hub.preferences.tokens import LinkSigner, Purpose  # noqa: E402
from hub.runtime import Runtime  # noqa: E402
from hub.services import apikeys  # noqa: E402
from hub.settings import Settings  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def seed(base: str, key: str, contacts: int) -> None:
    auth = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base, headers=auth, timeout=30) as client:
        for name, body in {
            "news": {
                "name": "Product news",
                "allowed_channels": ["email", "sms"],
                "allowed_frequencies": ["immediate", "daily", "weekly"],
            },
            "offers": {"name": "Offers", "allowed_channels": ["email"]},
            "security": {
                "name": "Security",
                "allowed_channels": ["email", "sms"],
                "required": True,
            },
        }.items():
            client.put(f"/v1/topics/{name}", json=body).raise_for_status()
        for i in range(contacts):
            client.put(
                f"/v1/contacts/c{i}",
                json={
                    "email": f"c{i}@example.com",
                    "phone": f"+1415555{i:04d}",
                    "locale": "ru" if i % 2 else "en",
                    "timezone": "Europe/Berlin",
                },
            ).raise_for_status()
            client.put(f"/v1/contacts/c{i}/subscriptions/news", json={"channels": ["email"]})


async def load(
    base: str, urls: list[str], *, connections: int, seconds: float, save: bool
) -> list[float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            url = random.choice(urls)
            started = time.perf_counter()
            answer = await client.get(url)
            if save:
                form = {
                    "csrf": CSRF.search(answer.text).group(1),  # type: ignore[union-attr]
                    "topic:news": "on",
                    "channels:news": "email",
                    "frequency:news": random.choice(["daily", "weekly"]),
                    "channels:security": "email",
                }
                answer = await client.post(url, data=form)
            answer.raise_for_status()
            latencies.append(time.perf_counter() - started)

    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-pages-"))
    url = f"sqlite:///{workdir}/hub.db"
    settings = Settings(database_url=url, secret_key=SECRET)
    runtime = Runtime.build(settings)
    migrate.upgrade(runtime.engine)
    with runtime.sessions() as session:
        key = apikeys.create(session, "bench", [Scope.ADMIN])
        session.commit()
    runtime.close()
    port = 8000 + random.randrange(1000, 9000)
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {
        "HUB_DATABASE_URL": url,
        "HUB_SECRET_KEY": SECRET,
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_PUBLIC_URL": base,
    }
    server = subprocess.Popen([HUB, "serve", "--port", str(port)], env=env, cwd=workdir)
    try:
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        print(f"seeding {args.contacts:,} contacts", flush=True)
        seed(base, key, args.contacts)
        signer = LinkSigner([SECRET], max_age=dt.timedelta(days=60))
        reader = Runtime.build(settings)
        with reader.reads() as session:
            ids = list(session.execute(select(Contact.id, Contact.link_key)))
        reader.close()
        urls = [
            f"/preferences/{signer.sign(Purpose.PREFERENCES, i, link_key=key)}" for i, key in ids
        ]
        results: dict[str, Any] = {}
        for phase, save in (("view", False), ("save", True)):
            cpu_before = proc_stats(server.pid)[0]
            started = time.perf_counter()
            latencies = asyncio.run(
                load(base, urls, connections=args.connections, seconds=args.seconds, save=save)
            )
            wall = time.perf_counter() - started
            cpu = proc_stats(server.pid)[0] - cpu_before
            requests = len(latencies) * (2 if save else 1)
            results[phase] = {
                "pages_per_second": round(len(latencies) / wall, 1),
                "p50_ms": round(1000 * percentile(latencies, 0.5), 1),
                "p99_ms": round(1000 * percentile(latencies, 0.99), 1),
                "server_cpu_ms_per_request": round(1000 * cpu / max(1, requests), 2),
            }
            print(phase, results[phase], flush=True)
        peak = proc_stats(server.pid)[1]
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    report = {
        "benchmark": "selfservice",
        "contacts": args.contacts,
        "connections": args.connections,
        "seconds_per_phase": args.seconds,
        **results,
        "server_peak_rss_mb": round(peak / 2**20),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "note": "view = GET the page; save = GET the form then POST a change (the pair timed)",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "selfservice.json").write_text(json.dumps(report, indent=2) + "\n")
    print("| phase | pages/s | p50 ms | p99 ms | server CPU ms/request |")
    print("|---|---|---|---|---|")
    for phase in ("view", "save"):
        r = results[phase]
        print(
            f"| {phase} | {r['pages_per_second']} | {r['p50_ms']} | {r['p99_ms']} | "
            f"{r['server_cpu_ms_per_request']} |"
        )


if __name__ == "__main__":
    main()
