"""Headless Chromium for the page tests: Debian's own browser, driven by Playwright.

`make test` installs the `chromium` package when it is missing. Locally a missing browser
skips these tests, saying why; on CI (CI=true) it fails them.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import service_missing

SCREENSHOTS = Path(__file__).parent / "screenshots"
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
