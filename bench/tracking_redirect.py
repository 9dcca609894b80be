"""Benchmark the click redirect and the open pixel under wrk, beside `/healthz` in the same run.

    .venv/bin/python bench/tracking_redirect.py [--people 1000] [--seconds 15] [--connections 16]

Starts `hub serve` on the embedded default (SQLite, in-process workers, the capture sink),
sends the people one tracked marketing e-mail through the public API and reads each person's
click and pixel URLs back from the captures (bench/tracked_mail.py). Then wrk (Debian's `wrk`), for --seconds each after a 3-second
warm-up: `/healthz` (the reference), `GET /t/c/{token}` rotating over the people (person i
clicks link i mod 4: one click per person, since several links of one message clicked within
the recorder's settle time read as a link scanner), and `GET /t/o/{token}.gif` likewise, all
with a desktop Chrome user agent so the hits are recorded as a person's.

The warm-ups use 100 other people's URLs, so the measured run is what records the 1,000 first
clicks and opens (every later hit is a repeat the recorder must still look at and let go).
Half a second before each tracked run ends, one more person (the probe) clicks or opens: when
that row appears says how far the recorder is behind at the end of a load. Prints requests/s,
p50, p99 and the server's CPU per request (from /proc, the recorder's tail after the load
included, the idle process's own CPU taken out), the ratios against `/healthz` and the goals
(issue 18: a redirect does at least half `/healthz`'s requests/s, with a p99 at most twice its
p99), then what the engagements table holds. Writes bench/results/tracking_redirect.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, func, select  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.api_load import parse  # noqa: E402
from bench.fanout import RESULTS, proc_stats  # noqa: E402
from bench.hub_runner import start_hub, stop_hub  # noqa: E402
from bench.report import machine  # noqa: E402
from bench.tracked_mail import create_key, seed  # noqa: E402
from hub.db.models import Engagement  # noqa: E402
from hub.domain import EngagementKind  # noqa: E402

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
WARM_PEOPLE = 100
WARM_SECONDS = 3
SETTLE = 2.0  # the recorder's default `tracking_settle_seconds`, which this bench leaves as is
# wrk's Lua: each thread walks the list from its own starting point, one path per request.
SCRIPT = """
wrk.headers["User-Agent"] = "%(agent)s"
local paths = {%(paths)s}
local started = 0
function setup(thread)
  started = started + 1
  thread:set("first", started * 397)
end
local n = 0
function init(args)
  n = first or 0
end
function request()
  n = n %% #paths + 1
  return wrk.format("GET", paths[n])
end
"""


@dataclass(frozen=True, slots=True)
class Probe:
    """One more person's hit, made half a second before a tracked run ends."""

    kind: EngagementKind
    path: str
    delivery_id: int


@dataclass
class Poller:
    """Every 0.1 s: the rotation's engagements of one kind (noting when the count moved) and
    whether the probe's has been written yet."""

    engine: Engine
    probe: Probe
    deliveries: list[int]
    changes: list[tuple[float, int]] = field(default_factory=list)
    probe_seen: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def poll(self) -> None:
        kind = Engagement.kind == self.probe.kind
        counted = select(func.count()).select_from(Engagement).where(kind)
        with self.engine.connect() as db:
            now = int(db.scalar(counted.where(Engagement.delivery_id.in_(self.deliveries))) or 0)
            probed = db.scalar(counted.where(Engagement.delivery_id == self.probe.delivery_id))
        if not self.changes or now != self.changes[-1][1]:
            self.changes.append((time.monotonic(), now))
        if probed and self.probe_seen is None:
            self.probe_seen = time.monotonic()

    def start(self) -> None:
        self.poll()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self, *, after: float) -> None:
        """Once the probe was seen (or `after` plus a minute passed)."""
        while self.probe_seen is None and time.monotonic() < after + 60:
            time.sleep(0.05)
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.poll()


def wrk(base: str, paths: list[str], *, connections: int, seconds: float) -> dict[str, Any]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    listed = ",".join(f'"{p}"' for p in paths)
    script.write_text(SCRIPT % {"agent": CHROME, "paths": listed})
    command = ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s"]
    out = subprocess.run(
        [*command, "--latency", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    script.unlink()
    return parse(out)


def idle_cpu_rate(pid: int, seconds: float = 3.0) -> float:
    """CPU seconds per second the server spends with no requests (its workers' polling)."""
    before = proc_stats(pid)[0]
    time.sleep(seconds)
    return (proc_stats(pid)[0] - before) / seconds


@dataclass(frozen=True, slots=True)
class Server:
    """The `hub serve` under load, and how each run is driven."""

    base: str
    pid: int
    engine: Engine
    connections: int
    seconds: int
    idle: float  # its CPU seconds per second with no requests (the workers' polling)


def phase(
    server: Server, *, name: str, paths: list[str], warm: list[str], probe: Probe | None = None,
    deliveries: list[int] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One endpoint: warm-up, the measured run and, for a tracked one, what was recorded."""
    wrk(server.base, warm, connections=server.connections, seconds=WARM_SECONDS)
    time.sleep(SETTLE + 1)  # the warm-up's hits written before the measured run starts
    cpu_before = proc_stats(server.pid)[0]
    started = time.monotonic()
    poller = Poller(server.engine, probe, deliveries or []) if probe else None
    probed: list[float] = []
    if poller and probe:
        poller.start()

        def hit() -> None:
            probed.append(time.monotonic())
            answer = httpx.get(f"{server.base}{probe.path}", headers={"User-Agent": CHROME})
            probed.append(answer.status_code)

        timer = threading.Timer(server.seconds - 0.5, hit)
        timer.start()
    figures = wrk(server.base, paths, connections=server.connections, seconds=server.seconds)
    stopped = time.monotonic()
    row: dict[str, Any] = {"endpoint": name, **figures}
    if poller:
        timer.join()
        poller.stop(after=stopped)
        final = poller.changes[-1]
        row |= {
            "recorded": final[1],
            "all_recorded_after_start_s": round(final[0] - started, 2),
            "last_written_after_stop_s": round(final[0] - stopped, 2),
            "probe_hit_before_stop_s": round(stopped - probed[0], 2),
            "probe_status": int(probed[1]) if len(probed) > 1 else None,
            "probe_written_after_stop_s": (
                round(poller.probe_seen - stopped, 2) if poller.probe_seen else None
            ),
        }
    time.sleep(max(0.0, stopped + SETTLE + 1 - time.monotonic()))  # the recorder's tail
    cpu = proc_stats(server.pid)[0] - cpu_before - server.idle * (time.monotonic() - stopped)
    row["server_cpu_ms_per_request"] = round(1000 * cpu / max(1.0, figures["requests"]), 3)
    return row


def recorded(engine: Engine, deliveries: list[int]) -> list[dict[str, Any]]:
    """The rotation's engagements by kind, person or machine, and the agent they were put to."""
    query = (
        select(Engagement.kind, Engagement.machine, Engagement.agent, func.count())
        .where(Engagement.delivery_id.in_(deliveries))
        .group_by(Engagement.kind, Engagement.machine, Engagement.agent)
    )
    with engine.connect() as db:
        return [
            {"kind": str(k), "machine": bool(m), "agent": str(a), "rows": int(n)}
            for k, m, a, n in db.execute(query)
        ]


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk (make bench does)")
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-track-"))
    url = f"sqlite:///{workdir}/hub.db"
    env = os.environ | {"HUB_DATABASE_URL": url, "HUB_LOG_LEVEL": "WARNING"}
    process, base = start_hub(env, workdir)
    engine = create_engine(url)
    try:
        key = create_key(env, workdir)
        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=base, headers=auth, timeout=120) as api:
            print(f"seeding {args.people:,} people and sending them one message", flush=True)
            seeded = seed(api, people=args.people, warm=WARM_PEOPLE)
        time.sleep(2)  # the workers go quiet after the send
        idle = idle_cpu_rate(process.pid)
        server = Server(base, process.pid, engine, args.connections, args.seconds, idle)
        people, warm, probe = seeded.people, seeded.warm, seeded.probe
        deliveries = [m.delivery_id for m in people]
        rows = [
            phase(server, name="/healthz", paths=["/healthz"], warm=["/healthz"]),
            phase(
                server,
                name="click redirect",
                paths=[m.clicks[i % len(m.clicks)] for i, m in enumerate(people)],
                warm=[m.clicks[0] for m in warm],
                probe=Probe(EngagementKind.CLICK, probe.clicks[0], probe.delivery_id),
                deliveries=deliveries,
            ),
            phase(
                server,
                name="open pixel",
                paths=[m.pixel for m in people],
                warm=[m.pixel for m in warm],
                probe=Probe(EngagementKind.OPEN, probe.pixel, probe.delivery_id),
                deliveries=deliveries,
            ),
        ]
        for row in rows:
            print(f"  {row}", flush=True)
        time.sleep(SETTLE + 1)
        kept = recorded(engine, deliveries)
        peak = proc_stats(process.pid)[1]
    finally:
        engine.dispose()
        stop_hub(process)
    reference = rows[0]
    for row in rows[1:]:
        row["requests_ratio"] = round(
            row["requests_per_second"] / reference["requests_per_second"], 2
        )
        row["p99_ratio"] = round(row["p99_ms"] / reference["p99_ms"], 2)
        row["goal_requests_met"] = row["requests_ratio"] >= 0.5
        row["goal_p99_met"] = row["p99_ratio"] <= 2.0
    return {
        "benchmark": "tracking_redirect",
        "people": args.people,
        "connections": args.connections,
        "seconds": args.seconds,
        "runs": rows,
        "engagements": kept,
        "server_idle_cpu_ms_per_s": round(1000 * idle, 1),
        "server_peak_rss_mb": round(peak / 2**20),
        "machine": machine(),
        "load_average": os.getloadavg(),
    }


def show(result: dict[str, Any]) -> None:
    m = result["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, load {m['load_average']}"
    )
    print(
        "| endpoint | requests/s | p50 ms | p99 ms | non-2xx/3xx | CPU ms/request | vs /healthz |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in result["runs"]:
        ratio = (
            f"{row['requests_ratio']}x requests/s, {row['p99_ratio']}x p99"
            if "requests_ratio" in row
            else "reference"
        )
        print(
            f"| {row['endpoint']} | {row['requests_per_second']:,.0f} | {row['p50_ms']:.1f} | "
            f"{row['p99_ms']:.1f} | {row['non_2xx']:.0f} | {row['server_cpu_ms_per_request']} | "
            f"{ratio} |"
        )
    for row in result["runs"][1:]:
        after = row["last_written_after_stop_s"]
        print(
            f"goals, {row['endpoint']}: requests/s >= 0.5x /healthz "
            f"{'met' if row['goal_requests_met'] else 'NOT MET'} ({row['requests_ratio']}x); "
            f"p99 <= 2x /healthz {'met' if row['goal_p99_met'] else 'NOT MET'} "
            f"({row['p99_ratio']}x)"
        )
        print(
            f"  recorded {row['recorded']:,} for {result['people']:,} people, the last "
            f"{row['all_recorded_after_start_s']} s after the load started "
            f"({abs(after)} s {'after' if after > 0 else 'before'} it stopped); the probe hit "
            f"{row['probe_hit_before_stop_s']} s before the end (answered "
            f"{row['probe_status']}) was written {row['probe_written_after_stop_s']} s after it"
        )
    for kept in result["engagements"]:
        print(f"  engagements: {kept}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    result = run(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "tracking_redirect.json").write_text(json.dumps(result, indent=2) + "\n")
    show(result)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
