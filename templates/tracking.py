"""Click and open tracking put into a rendered message: links swapped for tracked ones, a pixel.

Pure text work: the caller's `track` callback decides what a tracked URL is (signed, per
delivery), this module only finds the links. The HTML is not re-serialised: a regular expression
finds the link tags and only the `href` value's characters change, so everything else a staff
member wrote (conditional comments for Outlook, odd whitespace, entities) reaches the inbox as it
was rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from html import escape, unescape

Track = Callable[[str], str]  # original absolute URL -> the URL to put instead

NOTRACK = "data-hub-notrack"  # an attribute staff put on a link to leave it alone

# A link tag (`<a>`, `<area>`, and the VML button shapes of "bulletproof" buttons, the only link
# Outlook for Windows shows), or the start of a plain comment, whose end is found by `str.find`
# (a regex looking for it from every `<!--` of a document that never closes one is quadratic).
# A conditional comment (`<!--[if mso]>`) is not skipped: Outlook renders what is inside.
# Attribute values may hold `>` when quoted, never `<`: each try then stops at the next `<`, so
# a whole scan stays linear, and a tag with an unclosed quote or a `<` inside is left as written.
# The pattern starts with a bare "<" so the engine can skip from one "<" to the next (a group
# around the first alternative makes it try every position: twice the time).
_SCAN = re.compile(
    r"""<(?:(!--)(?!\[if)"""
    r"""|(?:a|area|v:roundrect|v:rect)(?=[\s/>])(?:[^<>"']|"[^"<]*"|'[^'<]*')*>)""",
    re.IGNORECASE,
)
# One attribute: its name, then a double-quoted, single-quoted or unquoted value, if any.
_ATTR = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+)))?""")
# What an unquoted attribute value must not contain to stay unquoted (HTML's own rule).
_UNQUOTED_UNSAFE = re.compile(r"""[\s"'=<>`]""")
# An absolute web URL with a host. Browsers strip spaces around an href, so do we.
_WEB_URL = re.compile(r"https?://[^\s/?#]+", re.IGNORECASE)
_TEMPLATE_LEFTOVER = ("{{", "{%", "{#")  # a variable the template left unrendered: not a link
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_TAIL = 1024
PIXEL = (
    '<img src="{src}" width="1" height="1" alt="" '
    'style="display:block;border:0;width:1px;height:1px">'
)

# SpamAssassin's HTML_IMAGE_ONLY_04 ... _32 add up to 2.8 points to an HTML part with a picture
# and under 3,200 bytes of text: on a short message with no picture of its own, the open pixel
# alone would make it look like image spam.
IMAGE_ONLY_TEXT = 3200
_IMG = re.compile(r"<img[\s/>]", re.IGNORECASE)
_UNSEEN = re.compile(r"<(style|script|title)\b[^>]*>.*?</\1\s*>|<[^>]*>", re.IGNORECASE | re.DOTALL)

# Text: a URL runs to the next space, `<`, `>` or `"`; then trailing punctuation that ends the
# sentence around it is given back (below). Not after a letter, digit or slash: "xhttp://" is not
# a link a mail client would show, and a URL inside another URL was taken with it. Spelt with
# classes, not IGNORECASE and a look-behind, so the engine can skip to each "h" (3 times faster).
_TEXT_URL = re.compile(r"""[Hh][Tt][Tt][Pp][Ss]?://[^\s<>"]+""")
_TRAILING = frozenset(".,;:!?")
_PAIRS = {")": "(", "]": "[", "}": "{"}


def _trackable(url: str, keep: Collection[str]) -> bool:
    if url in keep or not _WEB_URL.match(url):
        return False
    return "{" not in url or not any(mark in url for mark in _TEMPLATE_LEFTOVER)


def _unescaped(value: str) -> str:
    """`html.unescape`, with its common case first: query strings whose only entity is
    `&amp;` (a tenth of the rewrite's time went on unescape's general path)."""
    if "&" not in value:
        return value
    if value.count("&") == value.count("&amp;"):
        return value.replace("&amp;", "&")
    return unescape(value)


def _new_href(tag: str, track: Track, keep: Collection[str]) -> str:
    """The tag with its first href's value tracked, or unchanged (the first href is the one
    browsers follow)."""
    href: re.Match[str] | None = None
    for attr in _ATTR.finditer(tag):
        name = attr[1].lower()
        if name == "href":
            href = href or attr
        elif name == NOTRACK:
            return tag
    # The value is in group 2, 3 or 4 (double, single, no quotes): the last one matched.
    group = href.lastindex if href is not None else None
    if href is None or group is None or group == 1:
        return tag  # no href, or a bare `href` with no value
    original = _unescaped(href[group]).strip()
    if not _trackable(original, keep):
        return tag
    value = escape(track(original), quote=True)
    if group == 4 and _UNQUOTED_UNSAFE.search(value):
        value = f'"{value}"'  # unquoted before, but the new value needs quotes to stay one value
    start, end = href.span(group)
    return tag[:start] + value + tag[end:]


def tracked_html(
    html: str,
    *,
    track: Track,
    keep: Collection[str] = (),
    pixel_url: str | None = None,
) -> str:
    """`html` with every absolute http(s) link's href replaced by `track(url)`.

    `track` is called once per link, in document order. Left alone: mailto:, tel:, fragments,
    relative links, unrendered template variables, URLs in `keep` (compared after unescaping:
    the person's own unsubscribe and preferences links) and tags carrying `data-hub-notrack`.
    With `pixel_url`, a 1-pixel image goes just before the last `</body>` (or at the end).
    """
    parts: list[str] = []
    done = at = 0
    while (match := _SCAN.search(html, at)) is not None:
        at = match.end()
        if match.group(1) is not None:  # a comment: a link in it is not one
            at = _comment_end(html, at)
            continue
        tag = match.group(0)
        new = _new_href(tag, track, keep)
        if new is not tag:  # the same object when nothing changed: nothing to copy
            parts += (html[done : match.start()], new)
            done = at
    parts.append(html[done:])
    out = "".join(parts)
    if pixel_url is None:
        return out
    pixel = PIXEL.format(src=escape(pixel_url, quote=True))
    end = _last_body_end(out)
    return out + pixel if end is None else out[:end] + pixel + out[end:]


def pixel_is_harmless(html: str) -> bool:
    """Whether an open pixel leaves the message's spam score as it was: the HTML has a picture
    of its own (the image-only rules already see one), or enough text that they cannot fire."""
    if _IMG.search(html):
        return True
    if len(html.encode()) < IMAGE_ONLY_TEXT:  # fewer bytes in all than the text would need
        return False
    text = " ".join(unescape(_UNSEEN.sub(" ", html)).split())
    return len(text.encode()) >= IMAGE_ONLY_TEXT


def _comment_end(text: str, start: int) -> int:
    """Where the comment whose `<!--` ends at `start` ends, as HTML reads it: `<!-->` and
    `<!--->` are whole (empty) comments (so `<!--[if !mso]><!-->` does not swallow the button
    the other clients see), else the next `-->`, else the end of the document."""
    for short in (">", "->"):
        if text.startswith(short, start):
            return start + len(short)
    end = text.find("-->", start)
    return len(text) if end < 0 else end + 3


def _last_body_end(text: str) -> int | None:
    """Where the last `</body>` starts. It is nearly always in the last few hundred characters:
    those are searched first, the whole text only when they hold none."""
    tail = max(0, len(text) - _TAIL)
    for start in (tail, 0) if tail else (0,):
        last = None
        for last in _BODY_END.finditer(text, start):  # noqa: B007 -- the last one is wanted
            pass
        if last is not None:
            return last.start()
    return None


def _trim(url: str) -> str:
    """The URL without the punctuation of the sentence around it.

    Sentence marks at the end go; a closing bracket or quote goes when the URL does not open
    it too ("(see https://example.org/a_(b))." keeps the "(b)" of the URL). Counted once, not
    per character taken off: a URL ending in thousands of ")" costs no more than its length.
    """
    if url[-1] not in _TRAILING and url[-1] not in _PAIRS and url[-1] != "'":
        return url  # nearly every URL
    closing = {c: url.count(c) - url.count(o) for c, o in _PAIRS.items()}  # unopened closers
    quotes = url.count("'")
    end = len(url)
    while end:
        last = url[end - 1]
        if last in _PAIRS and closing[last] > 0:
            closing[last] -= 1
        elif last == "'" and quotes % 2:
            quotes -= 1
        elif last not in _TRAILING:
            break
        end -= 1
    return url[:end]


def tracked_text(text: str, *, track: Track, keep: Collection[str] = ()) -> str:
    """`text` (an e-mail's text part, an SMS) with every bare http(s) URL replaced by `track(url)`.

    `track` is called once per URL, in order. URLs in `keep` and unrendered template variables
    are left alone; punctuation closing the sentence stays outside the URL, and `<url>` works.
    """
    parts: list[str] = []
    done = 0
    for match in _TEXT_URL.finditer(text):
        url = _trim(match.group(0))
        before = text[match.start() - 1] if match.start() else " "
        if before.isalnum() or before in "_/" or not _trackable(url, keep):
            continue
        parts += (text[done : match.start()], track(url))
        done = match.start() + len(url)
    parts.append(text[done:])
    return "".join(parts)
