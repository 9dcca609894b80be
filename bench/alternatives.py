"""Benchmark Hub against what a user would write instead: same run, same peers, same recipients.

    .venv/bin/python bench/alternatives.py [--recipients 10000] [--apprise-sample 500]

One SMTP peer (the tests' aiosmtpd peer) and one counting webhook receiver, each in its own
process (bench/counting_peers.py), serve every run. The recipients are seeded into Hub's
database first and read back, so every sender personalises for the same people:

- a plain loop: smtplib, one persistent connection, an `EmailMessage` (text + HTML) per person;
- Apprise mailto://, one `Apprise` object per personalised recipient, on the first
  --apprise-sample people (0: all); its rate stands for everyone, and the table says so;
- Apprise mailto://, one notify with every recipient as a target (the same text for all);
- Apprise json://, one object per personalised recipient, and one notify to many targets;
- Hub: `hub serve` (embedded SQLite, in-process workers) sending the same personalised e-mail,
  then webhooks to the same receiver, timed from the notification to its last recorded outcome.

Each run is checked against the peer's own count. Prints a markdown table of messages/s, CPU
ms per message of the sender (process time; Hub's from /proc) and of the peer, the ratios
Hub/alternative and the goals; writes the same, with the machine, the load average and the
date, to bench/results/alternatives.json. Exits non-zero when a peer's count is off.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import os
import platform
import smtplib
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import apprise  # noqa: E402
from sqlalchemy import create_engine, select  # noqa: E402

from bench.counting_peers import Peer  # noqa: E402
from bench.fanout import RESULTS  # noqa: E402
from bench.hub_runner import hub_env, notify_once, seed_hub  # noqa: E402
from hub.db.models import Contact  # noqa: E402

PRODUCT = "Hub"
HTML = apprise.NotifyFormat.HTML
SENDER = Address("Bench", "bench", "example.com")
PARAGRAPHS = 14
LINE = "Note {n} on {product} for {plan} subscribers: a quick brown fox leaps over a lazy dog, two times."
WEBHOOK_SECRET = "whsec_YmVuY2gtYWx0ZXJuYXRpdmVzLXNpZ25pbmcta2V5"
GOALS = {"plain_loop": 7.0, "apprise_fastest_email": 2.0}  # Hub e-mail at least this many times


@dataclass(frozen=True, slots=True)
class Recipient:
    name: str
    email: str
    locale: str
    plan: str


@dataclass(slots=True)
class Run:
    """One sender's run: what it sent, how long it took, and what the peer saw."""

    key: str
    label: str
    channel: str
    messages: int  # what the sender handed over (the sample, when sampled)
    seconds: float
    sender_cpu_seconds: float
    peer_received: int
    peer_cpu_seconds: float
    sampled_from: int | None = None  # the recipients the sample's rate stands for
    wall_seconds: float | None = None  # Hub: the POST to the poll that saw the last outcome

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return asdict(self) | {
            "seconds": round(self.seconds, 3),
            "sender_cpu_seconds": round(self.sender_cpu_seconds, 3),
            "peer_cpu_seconds": round(self.peer_cpu_seconds, 3),
            "messages_per_second": round(self.rate, 1),
            "sender_cpu_ms_per_message": round(1000 * self.sender_cpu_seconds / self.messages, 3),
            "peer_cpu_ms_per_message": round(1000 * self.peer_cpu_seconds / self.messages, 3),
            "peer_count_matches": self.peer_received == self.messages,
            "extrapolated_seconds_for_all": (
                round(self.sampled_from / self.rate, 1) if self.sampled_from else None
            ),
        }


# --- what every sender says to each person ------------------------------------------------


def subject(person: Recipient) -> str:
    if person.locale == "ru":
        return f"Новости {PRODUCT} для {person.name}"
    return f"{PRODUCT} news for {person.name}"


def text_body(*, name: str, plan: str) -> str:
    lines = (LINE.format(n=n, product=PRODUCT, plan=plan) for n in range(PARAGRAPHS))
    return f"Hello {name},\n\n" + "\n\n".join(lines) + "\n"


def html_body(*, name: str, plan: str) -> str:
    lines = (LINE.format(n=n, product=PRODUCT, plan=plan) for n in range(PARAGRAPHS))
    return f"<h1>Hello {html.escape(name)}</h1>" + "".join(f"<p>{line}</p>" for line in lines)


def build_message(person: Recipient) -> EmailMessage:
    message = EmailMessage()
    message["From"] = SENDER
    message["To"] = Address(person.name, addr_spec=person.email)
    message["Subject"] = subject(person)
    message["Date"] = formatdate()
    message["Message-ID"] = make_msgid(domain="example.com")
    message.set_content(text_body(name=person.name, plan=person.plan))
    message.add_alternative(html_body(name=person.name, plan=person.plan), subtype="html")
    return message


def mailto_url(smtp: dict[str, Any], to: list[str]) -> str:
    # mailto:// (not mailtos://) with mode=insecure: no STARTTLS and no login, as the peer wants.
    query = {"from": SENDER.addr_spec, "name": SENDER.display_name, "to": ",".join(to)}
    return f"mailto://{smtp['host']}:{smtp['port']}?" + urlencode(query | {"mode": "insecure"})


def json_url(hooks: dict[str, Any], path: str) -> str:
    return f"json://{hooks['url'].removeprefix('http://')}{path}"


# --- the alternatives: each sends to everyone given and returns how many it handed over ----


def plain_loop(people: list[Recipient], smtp: dict[str, Any]) -> int:
    with smtplib.SMTP(smtp["host"], smtp["port"]) as connection:
        for person in people:
            connection.send_message(build_message(person))
    return len(people)


def check(result: apprise.AppriseResult, *, expected: int = 1) -> None:
    if result.failed_count or result.success_count != expected:
        raise SystemExit(f"Apprise: {result.status.name}, {result.failed_count} failed")


def apprise_mailto_each(people: list[Recipient], smtp: dict[str, Any]) -> int:
    for person in people:
        notifier = apprise.Apprise()
        notifier.add(mailto_url(smtp, [person.email]))
        body = html_body(name=person.name, plan=person.plan)
        check(notifier.notify(title=subject(person), body=body, body_format=HTML))
    return len(people)


def apprise_mailto_many(people: list[Recipient], smtp: dict[str, Any]) -> int:
    notifier = apprise.Apprise()
    notifier.add(mailto_url(smtp, [person.email for person in people]))
    body = html_body(name="subscriber", plan="every")
    check(notifier.notify(title=f"{PRODUCT} news", body=body, body_format=HTML))
    return len(people)


def apprise_json_each(people: list[Recipient], hooks: dict[str, Any]) -> int:
    for person in people:
        notifier = apprise.Apprise()
        notifier.add(json_url(hooks, "/hook"))
        check(notifier.notify(title=subject(person), body=f"{PRODUCT} news for {person.name}"))
    return len(people)


def apprise_json_many(people: list[Recipient], hooks: dict[str, Any]) -> int:
    notifier = apprise.Apprise()
    notifier.add([json_url(hooks, f"/hook/{n}") for n in range(len(people))])
    result = notifier.notify(title=f"{PRODUCT} news", body=f"{PRODUCT} news for everyone")
    check(result, expected=len(people))
    return len(people)


@dataclass(frozen=True, slots=True)
class Alternative:
    key: str
    label: str
    channel: str  # email: to the SMTP peer; webhook: to the receiver
    send: Callable[[list[Recipient], dict[str, Any]], int]
    sampled: bool = False  # too slow for everyone: a sample's rate stands for all


ALTERNATIVES = (
    Alternative("plain_loop", "plain loop: smtplib + EmailMessage", "email", plain_loop),
    Alternative(
        "apprise_mailto_each", "Apprise mailto://, one object per recipient", "email",
        apprise_mailto_each, sampled=True,
    ),
    Alternative(
        "apprise_mailto_many", "Apprise mailto://, one notify to many (same text)", "email",
        apprise_mailto_many,
    ),
    Alternative(
        "apprise_json_each", "Apprise json://, one object per recipient", "webhook",
        apprise_json_each,
    ),
    Alternative(
        "apprise_json_many", "Apprise json://, one notify to many (same text)", "webhook",
        apprise_json_many,
    ),
)  # fmt: skip


def measure(
    alternative: Alternative, *, people: list[Recipient], peer: Peer, sampled_from: int | None
) -> Run:
    """Run one alternative here: wall and process time (all threads), and the peer's share."""
    print(f"{alternative.label} ...", flush=True)
    received, peer_cpu = peer.received(), peer.cpu()
    started, cpu = time.perf_counter(), time.process_time()
    messages = alternative.send(people, peer.address)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return Run(
        key=alternative.key,
        label=alternative.label,
        channel=alternative.channel,
        messages=messages,
        seconds=seconds,
        sender_cpu_seconds=cpu,
        peer_received=peer.received() - received,
        peer_cpu_seconds=peer.cpu() - peer_cpu,
        sampled_from=sampled_from,
    )


def run_hub(
    *, channel: str, url: str, api_key: str, smtp: dict[str, Any], peer: Peer, expected: int,
    timeout: float,
) -> Run:  # fmt: skip
    label = f"Hub {'e-mail' if channel == 'email' else 'webhooks'} (hub serve, SQLite)"
    print(f"{label} ...", flush=True)
    env = hub_env(
        url=url, smtp=smtp, email_from=f"Bench <{SENDER.addr_spec}>", secret=WEBHOOK_SECRET
    )
    received, peer_cpu = peer.received(), peer.cpu()
    outcome = notify_once(
        url=url, api_key=api_key, env=env, data={"product": PRODUCT}, expected=expected,
        timeout=timeout,
    )  # fmt: skip
    return Run(
        key=f"hub_{channel}",
        label=label,
        channel=channel,
        messages=outcome.sent,
        seconds=outcome.seconds,
        sender_cpu_seconds=outcome.cpu_seconds,
        peer_received=peer.received() - received,
        peer_cpu_seconds=peer.cpu() - peer_cpu,
        wall_seconds=round(outcome.wall_seconds, 2),
    )


def load_recipients(url: str) -> list[Recipient]:
    engine = create_engine(url)
    columns = (Contact.name, Contact.email, Contact.locale, Contact.attributes)
    with engine.connect() as db:
        rows = db.execute(select(*columns).order_by(Contact.id)).all()
    engine.dispose()
    return [
        Recipient(name or "", email or "", locale or "en", attributes.get("plan", "free"))
        for name, email, locale, attributes in rows
    ]


def run_all(args: argparse.Namespace) -> tuple[dict[str, Run], dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-alternatives-"))
    peers = {"email": Peer("smtp"), "webhook": Peer("webhooks")}
    smtp, hook = peers["email"].address, peers["webhook"].address["url"] + "/hook"
    runs: dict[str, Run] = {}
    try:
        print(f"seeding {args.recipients:,} recipients into two Hub databases", flush=True)
        seeded = {
            channel: seed_hub(workdir, channel=channel, count=args.recipients, webhook_url=hook)
            for channel in peers
        }
        people = load_recipients(seeded["email"][0])
        sample = people[: args.apprise_sample] if args.apprise_sample else people
        for alternative in ALTERNATIVES:
            sampled = alternative.sampled and len(sample) < len(people)
            runs[alternative.key] = measure(
                alternative,
                people=sample if sampled else people,
                peer=peers[alternative.channel],
                sampled_from=len(people) if sampled else None,
            )
        for channel, (url, api_key) in seeded.items():
            runs[f"hub_{channel}"] = run_hub(
                channel=channel, url=url, api_key=api_key, smtp=smtp, peer=peers[channel],
                expected=len(people), timeout=args.timeout,
            )  # fmt: skip
    finally:
        reports = {name: peer.close() for name, peer in peers.items()}
    return runs, reports


# --- the report -----------------------------------------------------------------------------


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
    }


def ratios(runs: dict[str, Run]) -> dict[str, float]:
    hub_email, hub_webhook = runs["hub_email"].rate, runs["hub_webhook"].rate
    fastest_email = max(runs["apprise_mailto_each"].rate, runs["apprise_mailto_many"].rate)
    fastest_json = max(runs["apprise_json_each"].rate, runs["apprise_json_many"].rate)
    return {
        "hub_email/plain_loop": hub_email / runs["plain_loop"].rate,
        "hub_email/apprise_mailto_each": hub_email / runs["apprise_mailto_each"].rate,
        "hub_email/apprise_mailto_many": hub_email / runs["apprise_mailto_many"].rate,
        "hub_email/apprise_fastest_email": hub_email / fastest_email,
        "hub_webhook/apprise_json_each": hub_webhook / runs["apprise_json_each"].rate,
        "hub_webhook/apprise_json_many": hub_webhook / runs["apprise_json_many"].rate,
        "hub_webhook/apprise_fastest_json": hub_webhook / fastest_json,
    }


def goals(found: dict[str, float]) -> list[dict[str, Any]]:
    return [
        {
            "ratio": f"hub_email/{name}",
            "goal": goal,
            "measured": round(found[f"hub_email/{name}"], 2),
            "met": found[f"hub_email/{name}"] >= goal,
        }
        for name, goal in GOALS.items()
    ]


def report(runs: dict[str, Run], *, args: argparse.Namespace, load: list[float]) -> dict[str, Any]:
    found = ratios(runs)
    return {
        "benchmark": "alternatives",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": {"start": load, "end": list(os.getloadavg())},
        "recipients": args.recipients,
        "apprise_version": apprise.__version__,
        "apprise_sample": args.apprise_sample,
        "runs": [run.summary() for run in runs.values()],
        "ratios": {name: round(value, 2) for name, value in found.items()},
        "goals": goals(found),
        "notes": [
            "Apprise mailto:// per recipient ran on a sample; its rate stands for everyone.",
            "Sender CPU: this process's time (all threads) for the loop and Apprise; "
            "for Hub, the `hub serve` process and its children, from /proc.",
            "Hub's seconds run from the notification's creation to its last delivery recorded "
            "as sent (wall_seconds: from the POST to the poll that saw it); the others' from "
            "the first send to the last.",
        ],
    }


def hub_times(run: Run, runs: dict[str, Run]) -> str:
    hub = runs[f"hub_{run.channel}"]
    return "—" if run is hub else f"{hub.rate / run.rate:.1f}×"


def table(runs: dict[str, Run]) -> str:
    lines = [
        "| run | messages | seconds | messages/s | sender CPU ms/msg | peer CPU ms/msg "
        "| peer received | Hub × |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs.values():
        summary = run.summary()
        sample = f" (sample of {run.sampled_from:,})" if run.sampled_from else ""
        check = "" if summary["peer_count_matches"] else " ≠ sent!"
        lines.append(
            f"| {run.label} | {run.messages:,}{sample} | {run.seconds:.2f} | {run.rate:,.1f} | "
            f"{summary['sender_cpu_ms_per_message']} | {summary['peer_cpu_ms_per_message']} | "
            f"{run.peer_received:,}{check} | {hub_times(run, runs)} |"
        )
    return "\n".join(lines)


def print_summary(result: dict[str, Any], runs: dict[str, Run]) -> None:
    box, load = result["machine"], result["load_average"]
    print(
        f"\n## Hub and the alternatives, {result['recipients']:,} recipients, {result['date']}\n\n"
        f"{box['cpu']}, {box['cores']} cores, Python {box['python']}, Apprise "
        f"{result['apprise_version']}; load average {[round(x, 2) for x in load['start']]} "
        f"before, {[round(x, 2) for x in load['end']]} after\n"
    )
    print(table(runs))
    print("\n| ratio | measured |\n|---|---|")
    for name, value in result["ratios"].items():
        print(f"| {name} | {value}× |")
    print("\n| goal | wanted | measured | met |\n|---|---|---|---|")
    for goal in result["goals"]:
        met = "yes" if goal["met"] else "no"
        print(f"| {goal['ratio']} | ≥ {goal['goal']}× | {goal['measured']}× | {met} |")
    print("\n" + "\n".join(f"- {note}" for note in result["notes"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument(
        "--apprise-sample", type=int, default=500, help="people for Apprise per recipient; 0: all"
    )
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args()
    load = list(os.getloadavg())
    runs, peers = run_all(args)
    result = report(runs, args=args, load=load) | {"peers": peers}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "alternatives.json").write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result, runs)
    wrong = [run.label for run in runs.values() if run.peer_received != run.messages]
    if wrong:
        raise SystemExit(f"a peer's count differs from what was sent: {', '.join(wrong)}")


if __name__ == "__main__":
    main()
