"""Staff-written or sent e-mail HTML shown inside a console page: as the document of a
sandboxed frame (`<iframe sandbox srcdoc=...>`: no script, no same origin), under a page policy
that lets the e-mail's own styles and images apply and nothing else. The template preview and
the captured messages' page both show mail this way."""

from __future__ import annotations

import re

from hub.console.pages import HEADERS

# A srcdoc frame inherits its page's policy: this one lets the e-mail's inline styles (style
# attributes, <style>) and its images apply inside the frame, and still allows no script, no
# plugin, no font or connection anywhere. The console's own markup is autoescaped, so inline
# style is not a way in for anyone else.
PREVIEW_POLICY = (
    "default-src 'none'; style-src 'self'; style-src-elem 'self' 'unsafe-inline'; "
    "style-src-attr 'unsafe-inline'; img-src 'self' https: data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# And the frame's own, in its document: the same, narrower still.
FRAME_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:"
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)
# The open pixel of a tracked message (hub.templates.tracking.PIXEL): a member of staff
# reading a captured message must not count as its recipient opening it.
_PIXEL = re.compile(r'<img src="[^"]*/t/o/[^"]+\.gif"[^>]*>')


def frame_headers() -> dict[str, str]:
    """The headers of a page that shows e-mail in a frame (instead of the console's own)."""
    return HEADERS | {"Content-Security-Policy": PREVIEW_POLICY}


def framed(html: str) -> str:
    """The e-mail's document with its own policy first in its head, and without its open
    pixel. (Its tracked links cannot be followed from the frame: the page allows no frame
    navigation.)"""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{FRAME_POLICY}">'
    html = _PIXEL.sub("", html)
    found = _HEAD.search(html)
    if found is None:
        return meta + html
    return html[: found.end()] + meta + html[found.end() :]
