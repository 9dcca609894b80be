"""Mail shown in the console's frame: its own policy first, and no open pixel to fetch."""

from __future__ import annotations

import datetime as dt

from hub.console.email_frame import FRAME_POLICY, framed
from hub.dispatch.tracked_links import TrackedLinks
from hub.templates.tracking import tracked_html


def test_a_captured_tracked_message_is_shown_without_its_pixel() -> None:
    links = TrackedLinks(["k"], public_url="https://hub.example.com")
    pixel = links.open_url(delivery_id=5, at=dt.datetime(2026, 12, 7, tzinfo=dt.UTC))
    html = tracked_html(
        '<html><head></head><body><p><img src="https://cdn.example/logo.png" alt="Logo">'
        "Hello</p></body></html>",
        track=lambda url: url,
        pixel_url=pixel,
    )
    assert "/t/o/" in html
    shown = framed(html)
    assert "/t/o/" not in shown
    assert '<img src="https://cdn.example/logo.png" alt="Logo">' in shown  # its own pictures stay
    assert shown.startswith(
        f'<html><head><meta http-equiv="Content-Security-Policy" content="{FRAME_POLICY}">'
    )
