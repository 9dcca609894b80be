"""Plain text from an HTML e-mail body: paragraphs and breaks kept, links as "text (url)"."""

from __future__ import annotations

import re
from html import unescape

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main",
        "nav", "ol", "p", "pre", "section", "table", "tbody", "thead", "tfoot", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN = frozenset({"head", "script", "style", "template", "title"})
# Scanned with a regular expression rather than html.parser: a 2 KB body converts in a fifth of
# the time. `[^<>]` keeps every scan linear, even on markup that never closes a tag.
_TOKEN = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)([^<>]*)>|<[!?][^<>]*>")
_ATTR = re.compile(r"""([a-zA-Z-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
# Runs of HTML whitespace become one space (a lone " " is left alone: most matches would be
# those). A no-break space is content, not whitespace.
_SPACES = re.compile(r"[ \t\r\n\f\v]{2,}|[\t\r\n\f\v]")
_BLANK_LINES = re.compile(r"\n{3,}")


def _attr(attrs: str, name: str) -> str:
    for m in _ATTR.finditer(attrs):
        if m.group(1).lower() == name:
            return m.group(2) or m.group(3) or m.group(4) or ""  # unescaped with the rest
    return ""


class _Text:
    def __init__(self, *, collapsed: bool) -> None:
        self.out: list[str] = []
        self.collapsed = collapsed  # whitespace already collapsed in the whole document
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # href, where its text starts in `out`
        self.lists: list[int | None] = []  # None for <ul>, the next number for <ol>

    def data(self, text: str) -> None:
        self.out.append(text if self.pre or self.collapsed else _SPACES.sub(" ", text))

    def start(self, tag: str, attrs: str) -> None:
        if tag == "br":
            self.out.append("\n")
        elif tag == "li":
            number = self.lists[-1] if self.lists else None
            self.out.append("\n- " if number is None else f"\n{number}. ")
            if number is not None:
                self.lists[-1] = number + 1
        elif tag == "a":
            self.links.append((_attr(attrs, "href"), len(self.out)))
        elif tag == "img":
            self.out.append(_attr(attrs, "alt"))
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag in _BLOCKS:
            self.out.append("\n\n")
            if tag in ("ul", "ol"):
                self.lists.append(None if tag == "ul" else 1)
            self.pre += tag == "pre"

    def end(self, tag: str) -> None:
        if tag == "a" and self.links:
            href, start = self.links.pop()
            text = "".join(self.out[start:]).strip()
            # An in-page anchor means nothing in text; a link showing its own URL needs no copy.
            if href and not href.startswith("#") and href.removeprefix("mailto:") not in text:
                self.out.append(f" ({href})" if text else href)
        elif tag in _BLOCKS:
            self.out.append("\n\n")
            if tag in ("ul", "ol") and self.lists:
                self.lists.pop()
            self.pre -= tag == "pre" and self.pre > 0


def _without_comments(html: str) -> str:
    parts, at = [], 0
    while (start := html.find("<!--", at)) >= 0:
        parts.append(html[at:start])
        end = html.find("-->", start + 4)
        if end < 0:  # an unclosed comment hides the rest, as in a browser
            return "".join(parts)
        at = end + 3
    parts.append(html[at:])
    return "".join(parts)


def html_to_text(html: str) -> str:
    """The text a reader would see in `html`, for the text/plain part of the same message."""
    if "<!--" in html:
        html = _without_comments(html)
    collapsed = "<pre" not in html.lower()
    if collapsed:  # once for the document, in C (it folds no-break spaces too: fine in text)
        html = " ".join(html.split())
    text = _Text(collapsed=collapsed)
    hidden = ""  # the element whose content we are skipping: <style>, <script>...
    at = 0
    for token in _TOKEN.finditer(html):
        if token.start() > at and not hidden:
            text.data(html[at : token.start()])
        at = token.end()
        closing, name, attrs = token.groups()
        name = (name or "").lower()
        if hidden:
            hidden = "" if closing and name == hidden else hidden
        elif name in _HIDDEN and not closing:
            hidden = name
        elif closing:
            text.end(name)
        elif name:
            text.start(name, attrs)
    if not hidden:
        text.data(html[at:])
    # Entities last, so an escaped "&lt;b&gt;" is text, never a tag.
    lines = (line.strip(" ") for line in unescape("".join(text.out)).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
