"""Headless Chromium for the page tests: Debian's own browser, driven by Playwright.

`make test` installs the `chromium` package when it is missing. Locally a missing browser
skips these tests, saying why; on CI (CI=true) it fails them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import service_missing

SCREENSHOTS = Path(__file__).parent / "screenshots"
# axe-core's script, from the axe-playwright-python wheel of the dev extra (no CDN, no copy).
AXE = files("axe_playwright_python").joinpath("axe.min.js").read_text(encoding="utf-8")
SERIOUS = {"serious", "critical"}
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
FLAGS = [
    "--no-sandbox",  # root in a container has no user namespace for Chromium's sandbox
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per test module: Playwright's sync API keeps an event loop running on this
    thread while it lives, which later tests' `asyncio.run` would trip over."""
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        service_missing("Chromium (Debian's chromium package)", "not installed")
    assert executable is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=FLAGS)
        yield launched
        launched.close()


def axe(page: Page) -> dict[str, Any]:
    page.evaluate(AXE)
    # The sandboxed frames hold staff-written e-mail, not the console's markup, and run no
    # script for axe to talk to: the frame element itself is still checked (its title).
    results: dict[str, Any] = page.evaluate(
        "axe.run(document, {resultTypes: ['violations'], iframes: false})"
    )
    return results


def serious_violations(page: Page) -> list[str]:
    results = axe(page)
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        targets = [" ".join(map(str, node["target"])) for node in violation["nodes"]][:5]
        found.append(
            f"{violation['id']} ({violation['impact']}) at {', '.join(targets)}: "
            f"{violation['help']}"
        )
    return found


def wider(page: Page) -> list[str]:
    """The elements that reach past the window's right edge, or whose text does, outside a
    scrolling region: what to fix."""
    found: list[str] = page.evaluate(
        """() => [...document.querySelectorAll('body *')]
            .filter(e => Math.max(e.getBoundingClientRect().right,
                                  e.getBoundingClientRect().left + e.scrollWidth)
                         > window.innerWidth + 1)
            .filter(e => !e.parentElement.closest('.scroll'))
            .slice(0, 5)
            .map(e => e.tagName + (e.id ? '#' + e.id : '') + '.' + e.className)"""
    )
    return found
