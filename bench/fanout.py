"""Benchmark the broadcast: one notification to a topic with N subscribers, against real peers.

    .venv/bin/python bench/fanout.py [--recipients 100000] [--mix email=1]
        [--database-url URL] [--broker-url redis://...] [--workers 2]

The peers (aiosmtpd, the Twilio-compatible server, the webhook receiver) each run in their
own process; Hub runs as `hub serve` (embedded default: in-process broker and workers) or,
with --broker-url, as `hub serve` plus `hub worker --processes N`. The clock runs from the
POST to the last recorded outcome. Prints recipients/s, deliveries/s, p50/p99 time to
deliver (notification accepted -> delivery recorded as sent), CPU per delivery and peak
memory of Hub's processes, as a table and as JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url

from hub.db import migrate
from hub.db.models import Delivery, EventMessage, Notification, Template, Topic
from hub.domain import Channel, DeliveryState, EventMessageState, Scope
from hub.runtime import Runtime
from hub.services import apikeys
from hub.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the shared seeding helpers live in tests/
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
HUB = str(Path(PYTHON).parent / "hub")
ZONES = (
    "UTC",
    "Europe/Moscow",
    "Asia/Tokyo",
    "America/New_York",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/Berlin",
    "Pacific/Auckland",
)
HTML = "<h1>Hello {{ contact.name }}</h1>" + "".join(
    f"<p>Paragraph {i} about {{{{ data.product }}}} for {{{{ contact.attributes.plan }}}} "
    "customers: the quick brown fox jumps over the lazy dog, twice over.</p>"
    for i in range(14)
)
TEXT = "Hello {{ contact.name }},\n\n" + "".join(
    f"Paragraph {i} about {{{{ data.product }}}} for {{{{ contact.attributes.plan }}}} "
    "customers: the quick brown fox jumps over the lazy dog, twice over.\n\n"
    for i in range(14)
)
TEMPLATE = {
    "": {
        "email_subject": "{{ data.product }} news for {{ contact.name }}",
        "email_html": HTML,
        "email_text": TEXT,
        "sms_body": "Hi {{ contact.name }}, {{ data.product }} news: {{ links.preferences_url }}",
        "voice_say": "Hello {{ contact.name }}. There is news about {{ data.product }}.",
        "webhook_json": {
            "event": "news",
            "product": "{{ data.product }}",
            "name": "{{ contact.name }}",
        },
    },
    "ru": {
        "email_subject": "Новости {{ data.product }} для {{ contact.name }}",
        "sms_body": "Здравствуйте, {{ contact.name }}! Новости {{ data.product }}.",
        "voice_say": "Здравствуйте, {{ contact.name }}. Есть новости о {{ data.product }}.",
    },
}
NAMES = ["Ann Lee", "Борис Иванов", "Chen Wu", "Дарья Смирнова", "Emil Novak", "Fatima Khan"]


def daytime_zones() -> list[str]:
    now = dt.datetime.now(dt.UTC)
    return [z for z in ZONES if 9 <= now.astimezone(ZoneInfo(z)).hour < 20] or ["UTC"]


def parse_mix(value: str) -> dict[Channel, float]:
    mix = {Channel(k): float(v) for k, v in (part.split("=") for part in value.split(","))}
    total = sum(mix.values())
    return {k: v / total for k, v in mix.items()}


def seed(url: str, count: int, mix: dict[Channel, float], webhook_url: str) -> None:
    from tests import seeding  # shared with the crash test; importable once ROOT is on the path

    runtime = Runtime.build(Settings(database_url=url))
    migrate.upgrade(runtime.engine)
    rng = random.Random(7)
    zones = daytime_zones()
    now = dt.datetime.now(dt.UTC)
    with runtime.engine.begin() as db:
        topic_id = seeding.topic(db, "bench", [c.value for c in Channel], now=now)
        db.execute(
            insert(Template),
            [
                {
                    "key": "bench",
                    "description": None,
                    "variants": TEMPLATE,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
        channels, weights = list(mix), list(mix.values())
        people = (
            {
                "id": i + 1,
                "external_id": f"c{i}",
                "name": NAMES[i % len(NAMES)],
                "email": f"person{i}@example.com",
                "phone": f"+1415{5550000 + i % 9_000_000:07d}",
                "webhook_url": webhook_url,
                "locale": "ru" if i % 3 == 1 else "en",
                "timezone": zones[i % len(zones)],
                "attributes": {"plan": rng.choice(["free", "pro"])},
                "channels": [rng.choices(channels, weights)[0].value],
            }
            for i in range(count)
        )
        for _ in range(0, count, 5000):  # 5,000 rows per statement keeps memory flat
            seeding.subscribers(db, topic_id, itertools.islice(people, 5000), now=now)
    with runtime.sessions() as session:
        secret = apikeys.create(session, "bench", [Scope.NOTIFY, Scope.ADMIN])
        session.commit()
    runtime.close()
    Path(tempfile.gettempdir(), "hub-bench-key").write_text(secret)


def start_peer(module: str, *args: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [PYTHON, "-m", module, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def stop_peer(process: subprocess.Popen[str]) -> dict[str, Any]:
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.close()
    line = process.stdout.readline()
    process.wait(timeout=30)
    return json.loads(line) if line.strip() else {}


def proc_stats(pid: int) -> tuple[float, int]:
    """(CPU seconds, peak RSS bytes) of a live process and its live children."""
    cpu, peak = 0.0, 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]) * 1024)
        except FileNotFoundError:
            continue
    return cpu, peak


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def wait_for_events(engine: Any, started: float, timeout: float) -> float:
    """Seconds from the request until every outbox row was delivered to the event endpoint."""
    while True:
        with engine.connect() as db:
            waiting = db.scalar(
                select(func.count())
                .select_from(EventMessage)
                .where(EventMessage.state != EventMessageState.DELIVERED)
            )
        elapsed = time.perf_counter() - started
        if not waiting:
            return round(elapsed, 2)
        if elapsed > timeout:
            raise SystemExit(f"timed out: {waiting} events not relayed")
        time.sleep(0.2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    mix = parse_mix(args.mix)
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-"))
    url = args.database_url or f"sqlite:///{workdir}/hub.db"
    if url.startswith("postgresql"):
        name = f"hub_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(url).set(database=name).render_as_string(hide_password=False)
    peers: dict[str, subprocess.Popen[str]] = {}
    hub_processes: list[subprocess.Popen[str]] = []
    try:
        smtp, smtp_info = start_peer("tests.peers.smtp")
        peers["smtp"] = smtp
        webhook_secret = "whsec_" + __import__("base64").b64encode(secrets.token_bytes(24)).decode()
        hooks, hooks_info = start_peer("tests.peers.webhooks", "--secret", webhook_secret)
        peers["webhooks"] = hooks
        twilio, twilio_info = start_peer("tests.peers.twilio")
        peers["twilio"] = twilio
        print(
            f"seeding {args.recipients:,} subscribers into {make_url(url).render_as_string()}",
            flush=True,
        )
        seed(url, args.recipients, mix, hooks_info["url"] + "/hook")
        if args.cap_per_day:
            # A frequency cap nobody reaches: what the per-batch history query costs.
            capping = create_engine(url)
            with capping.begin() as db:
                db.execute(update(Topic).values(cap_per_day=args.cap_per_day))
            capping.dispose()
        env = os.environ | {
            "HUB_DATABASE_URL": url,
            "HUB_SMTP_HOST": smtp_info["host"],
            "HUB_SMTP_PORT": str(smtp_info["port"]),
            "HUB_SMTP_POOL_SIZE": "16",
            "HUB_EMAIL_FROM": "Bench <bench@example.com>",
            "HUB_WEBHOOK_SECRET": webhook_secret,
            "HUB_WEBHOOK_ALLOW_PRIVATE": "true",
            "HUB_TWILIO_ACCOUNT_SID": twilio_info["account_sid"],
            "HUB_TWILIO_AUTH_TOKEN": twilio_info["auth_token"],
            "HUB_TWILIO_FROM": "+14155550000",
            "HUB_TWILIO_BASE_URL": twilio_info["url"],
            "HUB_TWILIO_RATE_PER_SECOND": "1000",
            "HUB_LOG_LEVEL": "WARNING",
        }
        if args.broker_url:
            env["HUB_BROKER_URL"] = args.broker_url
            subprocess.run(
                ["redis-cli", "-u", args.broker_url, "FLUSHDB"], check=True, capture_output=True
            )
        port = 8000 + random.randrange(1000, 9000)
        hub_processes.append(
            subprocess.Popen([HUB, "serve", "--port", str(port)], env=env, cwd=workdir, text=True)
        )
        if args.broker_url:
            hub_processes.append(
                subprocess.Popen(
                    [HUB, "worker", "--processes", str(args.workers)],
                    env=env,
                    cwd=workdir,
                    text=True,
                )
            )
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        time.sleep(1.0)  # workers finish starting
        key = Path(tempfile.gettempdir(), "hub-bench-key").read_text()
        if args.events:
            # Another service listening to every send: each delivery also writes an outbox
            # row and is relayed, signed, to the webhook peer.
            httpx.post(
                f"{base}/v1/event-endpoints",
                headers={"Authorization": f"Bearer {key}"},
                json={
                    "url": hooks_info["url"] + "/events",
                    "event_types": ["delivery.sent"],
                    "secret": webhook_secret,
                },
                timeout=30,
            ).raise_for_status()
        cpu_before = sum(proc_stats(p.pid)[0] for p in hub_processes)
        started = time.perf_counter()
        answer = httpx.post(
            f"{base}/v1/notifications",
            headers={"Authorization": f"Bearer {key}"},
            json={"topic": "bench", "template": "bench", "data": {"product": "Hub"}},
            timeout=30,
        )
        answer.raise_for_status()
        nid = answer.json()["id"]
        engine = create_engine(url)
        done_states = [s for s in DeliveryState if s.final] + [DeliveryState.DEFERRED]
        last_report = 0.0
        while True:
            with engine.connect() as db:
                state = db.scalar(select(Notification.state).where(Notification.id == nid))
                total = (
                    db.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.notification_id == nid)
                    )
                    or 0
                )
                finished = (
                    db.scalar(
                        select(func.count())
                        .select_from(Delivery)
                        .where(Delivery.notification_id == nid, Delivery.state.in_(done_states))
                    )
                    or 0
                )
            elapsed = time.perf_counter() - started
            if elapsed - last_report >= 5:
                print(
                    f"  {elapsed:5.1f} s: {finished:,} of {total:,} deliveries recorded ({state})",
                    flush=True,
                )
                last_report = elapsed
            if state == "fanned_out" and finished == total and total >= args.recipients:
                break
            if elapsed > args.timeout:
                raise SystemExit(f"timed out: {finished} of {total} recorded")
            time.sleep(0.2)
        events_relayed_after = None
        if args.events:
            events_relayed_after = wait_for_events(engine, started, args.timeout)
        wall = time.perf_counter() - started
        cpu_peak = [proc_stats(p.pid) for p in hub_processes]
        with engine.connect() as db:
            created = db.scalar(select(Notification.created_at).where(Notification.id == nid))
            rows = db.execute(
                select(
                    Delivery.channel, Delivery.state, Delivery.sent_at, Delivery.updated_at
                ).where(Delivery.notification_id == nid)
            ).all()
        engine.dispose()
    finally:
        for process in hub_processes:
            process.send_signal(signal.SIGTERM)
        for process in hub_processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        peer_reports = {name: stop_peer(p) for name, p in peers.items()}
    created = created.replace(tzinfo=dt.UTC) if created.tzinfo is None else created
    sent = [r for r in rows if r.state == DeliveryState.SENT]
    latencies = [
        (
            (r.sent_at.replace(tzinfo=dt.UTC) if r.sent_at.tzinfo is None else r.sent_at) - created
        ).total_seconds()
        for r in sent
    ]
    last = max(latencies) if latencies else wall
    by_channel: dict[str, dict[str, int]] = {}
    for r in rows:
        states = by_channel.setdefault(r.channel.value, {})
        states[r.state.value] = states.get(r.state.value, 0) + 1
    cpu = sum(c for c, _ in cpu_peak) - cpu_before
    return {
        "benchmark": "fanout",
        "recipients": args.recipients,
        "mix": {k.value: round(v, 3) for k, v in mix.items()},
        "database": make_url(url).get_backend_name(),
        "broker": "redis" if args.broker_url else "in-process",
        "worker_processes": args.workers if args.broker_url else 0,
        "deliveries": len(rows),
        "sent": len(sent),
        "by_channel": by_channel,
        "seconds_to_last_outcome": round(last, 2),
        "recipients_per_second": round(args.recipients / last, 1),
        "p50_seconds": round(percentile(latencies, 0.50), 2),
        "p99_seconds": round(percentile(latencies, 0.99), 2),
        "hub_cpu_ms_per_delivery": round(1000 * cpu / max(1, len(rows)), 3),
        "hub_peak_rss_mb": [round(p / 2**20) for _, p in cpu_peak],
        "event_endpoint": args.events,
        "cap_per_day": args.cap_per_day,
        "seconds_to_last_event_relayed": events_relayed_after,
        "peers": peer_reports,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--mix", default="email=0.55,sms=0.15,voice=0.05,webhook=0.25")
    parser.add_argument("--database-url")
    parser.add_argument("--broker-url")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument(
        "--events", action="store_true", help="register an event endpoint for every send"
    )
    parser.add_argument("--cap-per-day", type=int, help="give the topic a frequency cap")
    result = run(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    mix = "-".join(result["mix"])
    name = f"fanout-{mix}-{result['database']}-{result['broker']}-{result['worker_processes']}"
    name += "-events" if result["event_endpoint"] else ""
    name += "-capped.json" if result["cap_per_day"] else ".json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(
        "| recipients | mix | db | broker | recipients/s | p50 s | p99 s | CPU ms/delivery | peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {result['recipients']:,} | {','.join(result['mix'])} | {result['database']} | "
        f"{result['broker']} ({result['worker_processes']}) | {result['recipients_per_second']:,} | "
        f"{result['p50_seconds']} | {result['p99_seconds']} | {result['hub_cpu_ms_per_delivery']} | "
        f"{result['hub_peak_rss_mb']} |"
    )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
