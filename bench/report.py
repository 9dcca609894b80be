"""Gather every benchmark's JSON in bench/results/ into one report, headed with the machine.

    .venv/bin/python bench/report.py

Reads bench/results/*.json (what fanout.py, digest.py, selfservice.py, campaign.py,
import_contacts.py and alternatives.py write; the print-only micro-benchmarks leave none) and
writes bench/results/REPORT.md, one markdown table per result file (lists of records, such as
alternatives.py's runs, as tables of their own), and bench/results/report.json, every result as
read. Prints the markdown.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
OUTPUTS = {"report.json"}
HEADING = {"benchmark", "bench", "machine", "date", "load_average", "note", "notes"}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def read_results() -> list[dict[str, Any]]:
    """Each result file's content, with its name and, when it has no date, its file's time."""
    found = []
    for path in sorted(RESULTS.glob("*.json")):
        if path.name in OUTPUTS:
            continue
        data = json.loads(path.read_text())
        written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
        found.append({"file": path.name, "date": written.isoformat(timespec="seconds")} | data)
    return found


def cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 100 else f"{value:.3g}"
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(cell(item) for item in value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys; lists of records are left for tables of their own."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def records_table(records: list[dict[str, Any]]) -> list[str]:
    rows = [flatten(record) for record in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def describe(box: Any) -> str:
    if not isinstance(box, dict):
        return cell(box)
    parts = [box.get("cpu"), f"{box.get('cores')} cores", f"Python {box.get('python')}"]
    return ", ".join(str(part) for part in [*parts, box.get("platform")] if part)


def load_text(load: Any) -> str:
    if isinstance(load, dict):  # before and after a long run
        return "; ".join(f"{moment} {cell(value)}" for moment, value in load.items())
    return cell(load)


def section(result: dict[str, Any]) -> list[str]:
    name = result.get("benchmark") or result.get("bench") or result["file"].removesuffix(".json")
    measured = f"{result['date']}; {describe(result.get('machine', 'machine not recorded'))}"
    if "load_average" in result:
        measured += f"; load average {load_text(result['load_average'])}"
    lines = [f"## {name} — `{result['file']}`", "", measured, ""]
    notes = result.get("notes") or result.get("note") or []
    if notes:
        lines += [f"- {note}" for note in ([notes] if isinstance(notes, str) else notes)] + [""]
    flat = flatten({k: v for k, v in result.items() if k not in HEADING | {"file"}})
    lines += ["| figure | value |", "|---|---|"]
    lines += [f"| {key} | {cell(value)} |" for key, value in flat.items() if not is_records(value)]
    for key, value in flat.items():
        if is_records(value):
            lines += ["", f"**{key}**", "", *records_table(value)]
    return [*lines, ""]


def markdown(results: list[dict[str, Any]], box: dict[str, Any], now: str) -> str:
    lines = [
        "# Hub benchmarks",
        "",
        f"Report written {now} on {describe(box)}; load average {cell(box['load_average'])}.",
        "Each section is one file in bench/results/, with the date and machine it was measured on.",
        "",
    ]
    for result in results:
        lines += section(result)
    return "\n".join(lines)


def main() -> None:
    results = read_results()
    box = machine()
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    text = markdown(results, box, now)
    (RESULTS / "REPORT.md").write_text(text)
    report = {"date": now, "machine": box, "results": results}
    (RESULTS / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(text)


if __name__ == "__main__":
    main()
