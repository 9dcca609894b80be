"""Real-world bounces from two public corpora (tests/data/bounces, licences beside them), read
by Hub and compared with what each reference parser's own test suite expects of them.

Figures print with `pytest -s`; the issue's goals are asserted: at least 95 % of the messages
the references recognise are understood (a bounce read as a bounce, a delay or auto-reply as
none), and hard/soft agrees with sisimai on at least 95 % of its user-unknown, host-unknown
and mailbox-full cases. Every disagreement is listed, so a change that moves one shows it.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from hub.channels.email.reports import Kind, NotAReport, Report, Verdict, parse

DATA = Path(__file__).parent.parent / "data" / "bounces"
FAILURES = frozenset({Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.BLOCKED})
HARD_SOFT = {
    "userunknown": "hard_bounce",
    "hostunknown": "hard_bounce",
    "mailboxfull": "soft_bounce",
}


@dataclass(frozen=True)
class Row:
    source: str
    file: str
    n: int
    recognisable: bool
    expected_kind: str  # a Kind's value, or "failed": any of hard, soft, blocked
    expected_address: str
    reason: str


@dataclass(frozen=True)
class Outcome:
    row: Row
    verdict: Verdict | None  # None: NotAReport
    why: str = ""

    @property
    def understood(self) -> bool:
        if self.verdict is None:
            return False
        return (self.verdict.kind is Kind.NOT_BOUNCE) == (self.row.expected_kind == "not_bounce")

    @property
    def agrees(self) -> bool:
        return self.verdict is not None and _agrees(self.verdict.kind, self.row.expected_kind)


def _agrees(kind: Kind, expected: str) -> bool:
    return kind.value == expected or (expected == "failed" and kind in FAILURES)


def rows() -> list[Row]:
    with (DATA / "expected.csv").open() as source:
        return [
            Row(
                source=r["source"],
                file=r["file"],
                n=int(r["n"]),
                recognisable=r["recognisable"] == "yes",
                expected_kind=r["expected_kind"],
                expected_address=r["expected_address"],
                reason=r["reference_reason"],
            )
            for r in csv.DictReader(source)
        ]


@cache
def read(file: str) -> Report | str:
    try:
        return parse((DATA / file).read_bytes())
    except NotAReport as exc:
        return str(exc)


@cache
def outcomes() -> tuple[Outcome, ...]:
    """One per expected recipient, matched without looking at what agrees: by address when
    the reference names one (no verdict on that address is a miss, not the report's headline),
    else by order, sisimai's n-th recipient to Hub's n-th verdict (a report with fewer
    verdicts misses the rest)."""
    found = []
    for row in rows():
        report = read(row.file)
        if isinstance(report, str):
            found.append(Outcome(row, None, f"refused: {report}"))
        elif row.expected_address:
            named = [v for v in report.verdicts if v.address == row.expected_address]
            why = f"no verdict on {row.expected_address}"
            found.append(Outcome(row, named[0]) if named else Outcome(row, None, why))
        elif row.n <= len(report.verdicts):
            found.append(Outcome(row, report.verdicts[row.n - 1]))
        else:
            found.append(Outcome(row, None, f"{len(report.verdicts)} verdicts, not {row.n}"))
    return tuple(found)


def share(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100 * part / whole:.1f} %)" if whole else "0/0"


def test_the_corpus_is_there_with_its_licences() -> None:
    expected = rows()
    files = {row.file for row in expected}
    assert len(files) > 700
    assert all((DATA / file).is_file() for file in files)
    for source in {row.source for row in expected}:
        assert (DATA / source / "NOTICE").is_file(), f"{source} has no NOTICE naming its licence"


def test_recognisable_bounces_are_understood() -> None:
    recognisable = [o for o in outcomes() if o.row.recognisable]
    per_source: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in recognisable:
        counts = per_source[outcome.row.source]
        counts["all"] += 1
        counts["understood"] += outcome.understood
        counts["kind agrees"] += outcome.agrees
        if outcome.row.expected_address:
            counts["with address"] += 1
            named = outcome.verdict.address if outcome.verdict else None
            counts["address agrees"] += named == outcome.row.expected_address
    print("\nBounce corpus, per source (recipients the reference recognises):")
    for source, counts in sorted(per_source.items()):
        print(
            f"  {source}: understood {share(counts['understood'], counts['all'])}, "
            f"kind as the reference {share(counts['kind agrees'], counts['all'])}"
            + (
                f", address {share(counts['address agrees'], counts['with address'])}"
                if counts["with address"]
                else ""
            )
        )
    families: dict[str, Counter[str]] = defaultdict(Counter)
    for outcome in recognisable:
        family = outcome.row.file.rsplit("-", 1)[0].rsplit("_", 1)[0]
        families[family]["all"] += 1
        families[family]["understood"] += outcome.understood
    print(
        "  per format: "
        + ", ".join(f"{name} {c['understood']}/{c['all']}" for name, c in sorted(families.items()))
    )
    missed = [o for o in recognisable if not o.understood]
    for outcome in missed:
        got = outcome.verdict.kind.value if outcome.verdict else outcome.why
        print(f"  not understood: {outcome.row.file} ({outcome.row.reason}): {got}")
    understood = sum(o.understood for o in recognisable)
    assert understood >= 0.95 * len(recognisable), share(understood, len(recognisable))


def test_hard_and_soft_agree_on_unknown_users_and_full_mailboxes() -> None:
    cases = [o for o in outcomes() if o.row.reason in HARD_SOFT]
    agreeing = [o for o in cases if o.verdict and o.verdict.kind.value == HARD_SOFT[o.row.reason]]
    print(
        f"\nHard/soft as sisimai on user-unknown, host-unknown, mailbox-full: "
        f"{share(len(agreeing), len(cases))}"
    )
    for outcome in cases:
        if outcome not in agreeing:
            verdict = outcome.verdict
            got = f"{verdict.kind.value} {verdict.status}" if verdict else outcome.why
            print(f"  disagrees: {outcome.row.file} ({outcome.row.reason}): {got}")
    assert len(cases) > 200
    assert len(agreeing) >= 0.95 * len(cases), share(len(agreeing), len(cases))


def test_every_kind_against_the_reference_and_what_is_no_bounce() -> None:
    """The looser figure (blocked versus soft for policy refusals, say) is shown, not held to
    95 %: the references split reasons differently (see import_corpus.py)."""
    recognisable = [o for o in outcomes() if o.row.recognisable]
    agreeing = sum(o.agrees for o in recognisable)
    print(
        f"\nKind as the reference, all recognisable recipients: "
        f"{share(agreeing, len(recognisable))}"
    )
    for outcome in recognisable:
        if not outcome.agrees and outcome.understood and outcome.verdict:
            print(
                f"  other kind: {outcome.row.file} ({outcome.row.reason}): "
                f"{outcome.verdict.kind.value} {outcome.verdict.status}"
            )
    unrecognised = [o for o in outcomes() if not o.row.recognisable]
    print(
        f"Not recognised by the reference: {len(unrecognised)}; Hub reads as a failure: "
        f"{sum(1 for o in unrecognised if o.verdict and o.verdict.kind in FAILURES)}"
    )
    assert agreeing >= 0.8 * len(recognisable), share(agreeing, len(recognisable))
