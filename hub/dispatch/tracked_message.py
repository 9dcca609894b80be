"""A rendered message made tracked: its links through signed redirects, a pixel in its HTML
(unless the HTML is short and has no picture of its own: see `pixel_is_harmless`).

Each distinct link is signed once and numbered from 1 in the order it first appears, the same
number in the HTML and the text part, so "clicks per link" adds up across both. Links to the
hub's own pages (the person's preferences and unsubscribe links, with or without a fragment or
query) are never tracked: they carry the person's token, which must not end up in a report or
an event sent to another service.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hub.dispatch.tracked_links import TrackedLinks
from hub.domain import Channel
from hub.templates import Rendered
from hub.templates.tracking import pixel_is_harmless, tracked_html, tracked_text


def tracked(
    links: TrackedLinks,
    rendered: Rendered,
    *,
    delivery_id: int,
    channel: Channel,
    sms: bool,
    now: dt.datetime,
    pixel_always: bool = False,
) -> Rendered:
    """E-mail: links and a pixel (`pixel_always`, or where harmless); SMS (when `sms`): links;
    any other channel as it was."""
    email = channel is Channel.EMAIL
    if not (email or (sms and channel is Channel.SMS)):
        return rendered
    own = f"{links.base}/"
    signed: dict[str, str] = {}
    numbers: dict[str, int] = {}

    def track(url: str) -> str:
        if url not in signed:
            if links.trackable(url) and not url.startswith(own):
                index = numbers.setdefault(url, len(numbers) + 1)
                signed[url] = links.click_url(delivery_id=delivery_id, index=index, url=url, at=now)
            else:
                signed[url] = url
        return signed[url]

    html = rendered.html
    if email and html:
        # No pixel where it alone would read as image spam: opens of such mail go unseen.
        wanted = pixel_always or pixel_is_harmless(html)
        pixel = links.open_url(delivery_id=delivery_id, at=now) if wanted else None
        html = tracked_html(html, track=track, pixel_url=pixel)
    text = tracked_text(rendered.text, track=track) if rendered.text else None
    return replace(rendered, html=html, text=text)
