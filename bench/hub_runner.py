"""One notification through `hub serve` (embedded SQLite, in-process workers), measured.

Used by bench/alternatives.py: `seed_hub` fills a fresh database with a topic's subscribers,
`notify_once` starts Hub on it, POSTs one notification to the topic, waits for every delivery's
outcome, stops Hub and says how long it took and what CPU Hub spent.
"""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, func, select

from bench.fanout import HUB, parse_mix, proc_stats, seed
from hub.db.models import Delivery, Notification
from hub.domain import DeliveryState


@dataclass(frozen=True, slots=True)
class HubOutcome:
    sent: int  # deliveries recorded as sent
    seconds: float  # the notification's creation to its last delivery recorded as sent
    wall_seconds: float  # the POST to the poll that saw the last outcome (a cross-check)
    cpu_seconds: float  # `hub serve` and its children, over the same span


def seed_hub(workdir: Path, *, channel: str, count: int, webhook_url: str) -> tuple[str, str]:
    """A fresh SQLite database with `count` subscribers on `channel`; its URL and an API key."""
    url = f"sqlite:///{workdir}/hub-{channel}.db"
    seed(url, count, parse_mix(f"{channel}=1"), webhook_url)
    return url, Path(tempfile.gettempdir(), "hub-bench-key").read_text()


def hub_env(*, url: str, smtp: dict[str, Any], email_from: str, secret: str) -> dict[str, str]:
    return os.environ | {
        "HUB_DATABASE_URL": url,
        "HUB_SMTP_HOST": smtp["host"],
        "HUB_SMTP_PORT": str(smtp["port"]),
        "HUB_SMTP_POOL_SIZE": "16",
        "HUB_EMAIL_FROM": email_from,
        "HUB_WEBHOOK_SECRET": secret,
        "HUB_WEBHOOK_ALLOW_PRIVATE": "true",
        "HUB_LOG_LEVEL": "WARNING",
    }


def start_hub(env: dict[str, str], workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = 8000 + random.randrange(1000, 9000)
    process = subprocess.Popen([HUB, "serve", "--port", str(port)], env=env, cwd=workdir)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base}/healthz").status_code == 200:
                time.sleep(1.0)  # the in-process workers finish starting
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"hub serve did not come up on {base}")


def stop_hub(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def count_deliveries(engine: Any, nid: int, *where: Any) -> int:
    query = select(func.count()).select_from(Delivery).where(Delivery.notification_id == nid)
    with engine.connect() as db:
        return int(db.scalar(query.where(*where)) or 0)


def wait_for_outcomes(engine: Any, nid: int, *, expected: int, timeout: float) -> None:
    """Poll until `expected` deliveries of the notification reached a final state."""
    finals = [state for state in DeliveryState if state.final]
    started = last_report = time.monotonic()
    while (done := count_deliveries(engine, nid, Delivery.state.in_(finals))) < expected:
        now = time.monotonic()
        if now - last_report >= 5:
            print(f"  {now - started:5.1f} s: {done:,} of {expected:,} recorded", flush=True)
            last_report = now
        if now - started > timeout:
            raise SystemExit(f"timed out: {done:,} of {expected:,} deliveries recorded")
        time.sleep(0.1)


def aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def seconds_to_last_outcome(engine: Any, nid: int) -> float:
    with engine.connect() as db:
        created = db.scalar(select(Notification.created_at).where(Notification.id == nid))
        last = db.scalar(select(func.max(Delivery.sent_at)).where(Delivery.notification_id == nid))
    if created is None or last is None:
        raise SystemExit(f"notification {nid}: nothing was recorded as sent")
    return (aware(last) - aware(created)).total_seconds()


def notify_once(
    *, url: str, api_key: str, env: dict[str, str], data: dict[str, Any], expected: int,
    timeout: float,
) -> HubOutcome:  # fmt: skip
    """Start Hub on the seeded database, send the topic one notification, measure, stop Hub."""
    process, base = start_hub(env, Path(url.removeprefix("sqlite:///")).parent)
    engine = create_engine(url)
    try:
        cpu = proc_stats(process.pid)[0]
        started = time.perf_counter()
        posted = httpx.post(
            f"{base}/v1/notifications",
            headers={"Authorization": f"Bearer {api_key}"},
            json={"topic": "bench", "template": "bench", "data": data},
            timeout=30,
        )
        posted.raise_for_status()
        nid = int(posted.json()["id"])
        wait_for_outcomes(engine, nid, expected=expected, timeout=timeout)
        wall = time.perf_counter() - started
        cpu = proc_stats(process.pid)[0] - cpu
        return HubOutcome(
            sent=count_deliveries(engine, nid, Delivery.state == DeliveryState.SENT),
            seconds=seconds_to_last_outcome(engine, nid),
            wall_seconds=wall,
            cpu_seconds=cpu,
        )
    finally:
        engine.dispose()
        stop_hub(process)
