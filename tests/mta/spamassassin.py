"""Debian's SpamAssassin scoring a message offline: local tests only (-L: no DNS blocklists,
no Razor/Pyzor), the rules the package ships, no Bayes, and a home and site configuration of
its own so nothing of the machine's (or an earlier run's learning) changes the score."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from email import message_from_bytes, policy
from pathlib import Path

PACKAGE_SITE = Path("/etc/spamassassin")
SETTINGS = [
    "use_bayes 0",
    "bayes_auto_learn 0",
    # What we read back: the score and every rule that hit, with its points.
    "add_header all Score _SCORE_",
    "add_header all Rules _TESTSSCORES(,)_",
]


class SpamAssassinMissing(Exception):
    """spamassassin is not installed."""


@dataclass(frozen=True, slots=True)
class Scored:
    score: float
    rules: dict[str, float]  # rule name to its points
    report: str  # SpamAssassin's own table of what hit, for the test's output

    def explained(self) -> str:
        hits = ", ".join(f"{name} {points:+.1f}" for name, points in self.rules.items())
        return f"score {self.score:.1f}: {hits or 'no rule hit'}\n{self.report}"


PACKAGE_RULES = Path("/usr/share/spamassassin")


def score(message: bytes, home: Path) -> Scored:
    """Raises SpamAssassinMissing when the command is absent, RuntimeError when it gives no
    score."""
    binary = shutil.which("spamassassin")
    if binary is None:
        raise SpamAssassinMissing("spamassassin not found on PATH (Debian's spamassassin)")
    # The package's plugin list (*.pre: the Check plugin and the rest), not the machine's
    # local.cf or anything else an administrator added.
    site = home / "site"
    site.mkdir(parents=True, exist_ok=True)
    for loads in PACKAGE_SITE.glob("*.pre"):
        shutil.copy(loads, site)
    # The rules the package shipped, not what its daily sa-update last fetched into
    # /var/lib/spamassassin (which would override them): the same scores every run.
    command = [
        binary,
        "-L",
        "-t",
        f"--configpath={PACKAGE_RULES}",
        f"--siteconfigpath={site}",
        "-p",
        str(home / "user_prefs"),
    ]
    for line in SETTINGS:
        command += ["--cf", line]
    done = subprocess.run(
        command,
        input=message,
        capture_output=True,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8"},
        timeout=300,
        check=False,
    )
    scored = message_from_bytes(done.stdout, policy=policy.default)
    value, rules = scored.get("X-Spam-Score"), scored.get("X-Spam-Rules")
    if value is None:
        why = done.stderr.decode(errors="replace")[-2000:]
        raise RuntimeError(f"spamassassin gave no score (exit {done.returncode}): {why}")
    hits: dict[str, float] = {}
    for item in re.sub(r"\s+", "", str(rules or "")).split(","):
        name, _, points = item.partition("=")
        if name and name != "none":
            hits[name] = float(points or 0)
    text = done.stdout.decode(errors="replace")
    at = text.find("Content analysis details:")
    return Scored(float(str(value)), hits, text[at:] if at >= 0 else "")
