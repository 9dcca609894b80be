"""Fixtures of the fault tests: a private Redis, and the figures line each test prints."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Figures = Callable[..., str]
_LINES = pytest.StashKey[list[str]]()


def _shown(value: object) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


@pytest.fixture
def figures(
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
    record_property: Callable[[str, object], None],
) -> Figures:
    """`figures("kill-workers", deliveries=10000, lost=0, ...)` prints one line past any
    output capture, keeps it for the run's summary and for JUnit XML, and returns it."""

    def report(name: str, **values: object) -> str:
        line = f"faults: {name} " + " ".join(f"{k}={_shown(v)}" for k, v in values.items())
        with capsys.disabled():
            print(f"\n{line}", flush=True)
        record_property("faults", line)
        request.config.stash.setdefault(_LINES, []).append(line)
        return line

    return report


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(_LINES, [])
    if lines:
        terminalreporter.section("fault injection figures")
        for line in lines:
            terminalreporter.write_line(line)
