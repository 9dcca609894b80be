"""Benchmark the streamed contact import: N realistic contacts from CSV into a fresh database.

    .venv/bin/python bench/import_contacts.py [--rows 100000] [--database-url URL] [--workers N]

The file is read in 64 KB chunks and handed to `import_contacts`, the code path the API and the
CLI use. Prints rows/s, CPU per 1,000 rows (this process plus the checking workers) and peak
memory, as a table and as one JSON line (also written to bench/results/import_contacts.json).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import phonenumbers

from hub.db import migrate
from hub.domain import ActorKind
from hub.runtime import Runtime
from hub.services.actor import Actor
from hub.services.imports import ImportFormat, import_contacts
from hub.settings import Settings

CHUNK = 65_536
RESULTS = Path(__file__).parent / "results" / "import_contacts.json"
COUNTRIES = {  # region: (time zones, locales, e-mail domains)
    "US": (["America/New_York", "America/Chicago", "America/Los_Angeles"], ["en-US", "es-US"]),
    "GB": (["Europe/London"], ["en-GB"]),
    "DE": (["Europe/Berlin"], ["de-DE", "en"]),
    "FR": (["Europe/Paris"], ["fr-FR"]),
    "RU": (["Europe/Moscow", "Asia/Yekaterinburg"], ["ru-RU", "ru"]),
    "BR": (["America/Sao_Paulo"], ["pt-BR"]),
    "IN": (["Asia/Kolkata"], ["en-IN", "hi-IN"]),
    "JP": (["Asia/Tokyo"], ["ja-JP"]),
    "AU": (["Australia/Sydney", "Australia/Perth"], ["en-AU"]),
    "ES": (["Europe/Madrid"], ["es-ES", "ca-ES"]),
}
FIRST = "Ann Boris Chen Dara Emil Fatima Greta Hiro Ines Jonas Kemal Lena Mateo Nia Olga Pavel"
LAST = "Lee Ivanova Garcia Müller Dubois Silva Sharma Tanaka Smith Rossi Novak Kowalski Brown"
DOMAINS = ["example.com", "mail.example.org", "corp.example.net", "example.co.uk", "example.de"]
PLANS = ["free", "basic", "pro", "enterprise"]
SOURCES = ["web", "ios", "android", "partner", "import"]
COLUMNS = [
    "external_id",
    "kind",
    "name",
    "email",
    "phone",
    "locale",
    "timezone",
    "webhook_url",
    "attr.plan",
    "attr.source",
    "attr.score",
]


def valid_phones(region: str, rng: random.Random, count: int) -> list[str]:
    """Real-looking valid numbers: the region's example mobile number with other last digits."""
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
    national = str(example.national_number)
    found: list[str] = []
    while len(found) < count:
        digits = national[:-4] + f"{rng.randrange(10_000):04d}"
        number = phonenumbers.parse(f"+{example.country_code}{digits}", None)
        if phonenumbers.is_valid_number(number):
            style = rng.choice(
                [phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL]
            )
            found.append(phonenumbers.format_number(number, style))
    return found


def write_contacts(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]  # unique ids even on a PostgreSQL database used before
    phones = {region: valid_phones(region, rng, 500) for region in COUNTRIES}
    regions = list(COUNTRIES)
    first, last = FIRST.split(), LAST.split()
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(COLUMNS)
        for i in range(rows):
            region = rng.choice(regions)
            zones, locales = COUNTRIES[region]
            given, family = rng.choice(first), rng.choice(last)
            email = f"{given}.{family}{i}@{rng.choice(DOMAINS)}".lower().replace("ü", "ue")
            out.writerow(
                [
                    f"crm-{run}-{i:07d}",
                    "employee" if i % 20 == 0 else "client",
                    f"{given} {family}",
                    email,
                    rng.choice(phones[region]),
                    rng.choice(locales),
                    rng.choice(zones),
                    f"https://hooks.example.com/c/{i}" if i % 50 == 0 else "",
                    rng.choice(PLANS),
                    rng.choice(SOURCES),
                    str(rng.randrange(100)) if i % 3 else "",
                ]
            )


def chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def descendants() -> dict[int, tuple[float, int]]:
    """CPU seconds (own and reaped children's) and peak RSS (KB) of every process below us."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    mine, frontier = set(), {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - mine
        mine |= frontier
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in mine:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        cpu = sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
        hwm = next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM")), 0
        )
        found[pid] = (cpu, hwm)
    return found


class Watcher(threading.Thread):
    """Samples the peak RSS of the worker processes, which leave no rusage we can read."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: dict[int, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(1.0):
            for pid, (_, hwm) in descendants().items():
                self.peaks[pid] = max(self.peaks.get(pid, 0), hwm)


def machine() -> dict[str, Any]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    cores = len(os.sched_getaffinity(0))
    return {"cpu": model, "cores": cores, "python": platform.python_version()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temp dir")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=None, help="default: by core count")
    parser.add_argument("--profile", help="write a cProfile of the import to this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        data = Path(tmp) / "contacts.csv"
        started = time.perf_counter()
        write_contacts(data, args.rows)
        print(
            f"generated {args.rows:,} contacts ({data.stat().st_size / 1e6:.1f} MB) "
            f"in {time.perf_counter() - started:.1f} s"
        )
        url = args.database_url or f"sqlite:///{tmp}/hub.db"
        runtime = Runtime.build(Settings(database_url=url))
        migrate.upgrade(runtime.engine)
        actor = Actor(kind=ActorKind.CLI, name="bench", source="bench.import")

        def run() -> Any:
            return import_contacts(
                runtime.sessions,
                chunks(data),
                fmt=ImportFormat.CSV,
                actor=actor,
                allow_private_webhooks=False,
                batch_size=args.batch_size,
                workers=args.workers,
            )

        watcher = Watcher()
        watcher.start()
        before_children = sum(cpu for cpu, _ in descendants().values())
        cpu_started, started = time.process_time(), time.perf_counter()
        if args.profile:
            import cProfile

            with cProfile.Profile() as profile:
                report = run()
            profile.dump_stats(args.profile)
        else:
            report = run()
        seconds = time.perf_counter() - started
        main_cpu = time.process_time() - cpu_started
        time.sleep(0.5)  # let the fork server reap its workers, so their CPU is counted
        watcher.stop.set()
        watcher.join()
        workers_cpu = sum(cpu for cpu, _ in descendants().values()) - before_children
        runtime.close()

    if report.rows != args.rows or report.failed:
        raise SystemExit(f"import went wrong: {report.model_dump_json()[:2000]}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    worker_peaks = sorted((kb / 1024 for kb in watcher.peaks.values()), reverse=True)
    result = {
        "benchmark": "import_contacts",
        "rows": args.rows,
        "database": url.split(":", 1)[0].split("+")[0],
        "batch_size": args.batch_size,
        "workers": args.workers,
        "seconds": round(seconds, 2),
        "rows_per_s": round(args.rows / seconds),
        "cpu_s_per_1000_rows": round((main_cpu + workers_cpu) / args.rows * 1000, 4),
        "main_cpu_s": round(main_cpu, 2),
        "workers_cpu_s": round(workers_cpu, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "helper_peak_rss_mb": [round(mb, 1) for mb in worker_peaks],
        "created": report.created,
        "machine": machine(),
    }
    rows = [
        ("rows", f"{args.rows:,} ({result['database']}, batches of {args.batch_size:,})"),
        ("wall time", f"{seconds:.2f} s"),
        ("throughput", f"{result['rows_per_s']:,} rows/s"),
        (
            "CPU per 1,000 rows",
            f"{result['cpu_s_per_1000_rows'] * 1000:.1f} ms "
            f"(main {main_cpu:.1f} s + workers {workers_cpu:.1f} s)",
        ),
        ("peak RSS, main", f"{peak_mb:.0f} MB"),
        ("peak RSS, helpers", ", ".join(f"{mb:.0f} MB" for mb in worker_peaks) or "none"),
        ("machine", f"{result['machine']['cpu']}, {result['machine']['cores']} cores"),
    ]
    for name, value in rows:
        print(f"{name:<20} {value}")
    line = json.dumps(result)
    print(line)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(line + "\n")


if __name__ == "__main__":
    main()
