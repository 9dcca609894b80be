"""Rebuild the bounce corpus and its expectations from the two references (run by hand).

    python tests/data/bounces/import_corpus.py P5_SISIMAI_CHECKOUT FLUFL_BOUNCE_SDIST_DIR

sisimai (BSD-2-Clause): the messages of p5-sisimai's set-of-emails/maildir/bsd that its public
tests (t/*-lhost-*.t, t/*-rhost-*.t, t/89x-*.t) name, with the verdict those tests expect per
recipient: status, reply code, reason and the hard-bounce flag. flufl.bounce (Apache-2.0): its
tests/data messages with the addresses tests/test_detectors.py expects and whether the failure
is temporary. Nothing here comes from Hub's own output.
"""

from __future__ import annotations

import csv
import re
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).parent
COLUMNS = [
    "source",
    "file",
    "n",
    "recognisable",
    "expected_kind",
    "expected_address",
    "reference_reason",
    "reference_status",
    "reference_hard",
]
# sisimai's reasons, as Hub's kinds. `suspend` (a disabled mailbox, 5.2.1) is hard in Hub's
# rules though sisimai does not flag it hard; `filtered` (refused after DATA, often "user
# unknown" from a filtering gateway) says no more than "it failed"; the other reasons that
# are not about the recipient's mailbox are policy refusals (blocked) or passing trouble.
HARD = {"userunknown", "hostunknown", "hasmoved", "notaccept", "suspend"}
SOFT = {"mailboxfull", "exceedlimit", "emailtoolarge", "expired"}
BLOCKED = {
    "blocked",
    "spamdetected",
    "policyviolation",
    "rejected",
    "securityerror",
    "virusdetected",
    "norelaying",
    "notcompliantrfc",
    "authfailure",
    "badreputation",
    "requireptr",
    "speeding",
    "contenterror",
}
NOT_BOUNCE = {"delivered", "vacation"}
_KEY = re.compile(r"'(\d+)'\s*=>\s*\[")
_ROW = re.compile(r"\[\s*'([^']*)',\s*'([^']*)',\s*'([^']*)',\s*(\d)(?:,\s*'([^']*)')?\s*\]")
_ENGINE = re.compile(r"my \$enginename = '([^']+)'")
_FLUFL = re.compile(r"\('(\w+)',\s*'([\w.]+\.txt)',\s*\[([^\]]*)\],\s*(True|False)\)", re.S)


def sisimai_kind(reason: str, feedback: str | None) -> str:
    if reason == "feedback":
        return "not_bounce" if feedback in ("not-spam", "auth-failure") else "complaint"
    if reason in HARD:
        return "hard_bounce"
    if reason in SOFT:
        return "soft_bounce"
    if reason in BLOCKED:
        return "blocked"
    if reason in NOT_BOUNCE:
        return "not_bounce"
    return "failed"  # systemerror, mailererror, onhold, undefined...: any failure agrees


def sisimai_rows(checkout: Path) -> list[dict[str, str]]:
    rows = []
    target = HERE / "sisimai"
    target.mkdir(exist_ok=True)
    for test in sorted((checkout / "t").glob("*.t")):
        source = test.read_text()
        engine = _ENGINE.search(source)
        if engine is None or "isexpected" not in source:
            continue
        name = engine.group(1).lower()
        if name not in ("arf", "rfc3464", "rfc3834"):
            name = ("rhost-" if "-rhost-" in test.name else "lhost-") + name
        keys = list(_KEY.finditer(source))
        for i, key in enumerate(keys):
            end = keys[i + 1].start() if i + 1 < len(keys) else len(source)
            eml = checkout / "set-of-emails/maildir/bsd" / f"{name}-{int(key.group(1)):02d}.eml"
            if not eml.exists():
                continue
            shutil.copyfile(eml, target / eml.name)
            for n, row in enumerate(_ROW.finditer(source, key.end(), end), 1):
                status, _reply, reason, hard, feedback = row.groups()
                rows.append(
                    {
                        "source": "sisimai",
                        "file": f"sisimai/{eml.name}",
                        "n": str(n),
                        "recognisable": "yes",
                        "expected_kind": sisimai_kind(reason, feedback),
                        "expected_address": "",
                        "reference_reason": reason if not feedback else f"{reason}:{feedback}",
                        "reference_status": status,
                        "reference_hard": hard,
                    }
                )
    for eml in sorted((checkout / "set-of-emails/maildir/not").glob("*.eml")):
        shutil.copyfile(eml, target / eml.name)
        rows.append(_nothing("sisimai", f"sisimai/{eml.name}"))
    return rows


def flufl_rows(sdist: Path) -> list[dict[str, str]]:
    rows = []
    target = HERE / "flufl"
    target.mkdir(exist_ok=True)
    source = (sdist / "tests/test_detectors.py").read_text()
    seen = set()
    for _detector, name, addresses, temporary in _FLUFL.findall(source):
        if name in seen:  # a message listed for two detectors: the first expectation
            continue
        seen.add(name)
        shutil.copyfile(sdist / "tests/data" / name, target / name)
        found = sorted(set(re.findall(r"b'([^']+)'", addresses)), key=str.lower)
        if not found:
            rows.append(_nothing("flufl", f"flufl/{name}"))
        for n, address in enumerate(found, 1):
            rows.append(
                {
                    "source": "flufl",
                    "file": f"flufl/{name}",
                    "n": str(n),
                    "recognisable": "yes",
                    "expected_kind": "not_bounce" if temporary == "True" else "failed",
                    "expected_address": address.lower(),
                    "reference_reason": "temporary" if temporary == "True" else "permanent",
                    "reference_status": "",
                    "reference_hard": "",
                }
            )
    return rows


def _nothing(source: str, file: str) -> dict[str, str]:
    return dict.fromkeys(COLUMNS, "") | {
        "source": source,
        "file": file,
        "n": "0",
        "recognisable": "no",
    }


def main() -> None:
    rows = sisimai_rows(Path(sys.argv[1])) + flufl_rows(Path(sys.argv[2]))
    with (HERE / "expected.csv").open("w", newline="") as out:
        writer = csv.DictWriter(out, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} expectations")


if __name__ == "__main__":
    main()
