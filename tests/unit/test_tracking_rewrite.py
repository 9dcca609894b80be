"""Issue 18, parts 1 and 2: links in a rendered message swapped for tracked ones; the pixel.

The rewritten HTML is read back with the standard library's HTML parser (a browser's view of
it), so a test checks what a mail client would follow, not the regular expression's idea of it.
"""

from __future__ import annotations

import time
from html.parser import HTMLParser

import pytest

from hub.domain import Channel
from hub.templates import Links, Parts, Renderer, TemplateDoc
from hub.templates.tracking import (
    IMAGE_ONLY_TEXT,
    PIXEL,
    pixel_is_harmless,
    tracked_html,
    tracked_text,
)

HUB = "https://hub.example.org"
LINKS = Links(preferences_url=f"{HUB}/p/tok-1", unsubscribe_url=f"{HUB}/u/tok-1")
KEEP = (LINKS.preferences_url, LINKS.unsubscribe_url)


class Tracker:
    """Numbers each distinct URL as the dispatcher's callback does, and remembers the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.numbers: dict[str, int] = {}

    def __call__(self, url: str) -> str:
        self.calls.append(url)
        number = self.numbers.setdefault(url, len(self.numbers))
        return f"{HUB}/c/d42.sig/{number}?v=1&k=2"


class Links_(HTMLParser):
    """Every link a mail client would follow, with the attributes it reads them from."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str | None] = []
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("a", "area"):
            self.hrefs.append(dict(attrs).get("href"))
        elif tag == "img":
            self.images.append(dict(attrs))

    handle_startendtag = handle_starttag


def parsed(document: str) -> Links_:
    parser = Links_()
    parser.feed(document)
    parser.close()
    return parser


# A marketing e-mail as the common builders write one: tables, a button whose href comes after
# its style, single quotes, a query string with &amp;, an Outlook-only button, a link a staff
# member marked not to track, mailto and tel, an anchor, and the footer's own links.
NEWSLETTER = f"""\
<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Spring sale</title>
<style>a {{ color: #0b57d0; }}</style></head>
<BODY style="margin:0">
<table role="presentation" width="100%"><tr><td align="center">
  <a href="#content" style="position:absolute;left:-999px">Skip to content</a>
  <a href='https://shop.example.com/?utm_source=hub&amp;utm_medium=email'><img
     src="https://cdn.example.com/logo.png" alt="Acme"></a>
</td></tr>
<tr><td id="content" style="padding:16px">
  <h1>Spring sale: 30% off</h1>
  <p>Everything in the <a HREF="https://shop.example.com/garden?c=1&amp;d=2">garden range</a>
  until Sunday.</p>
  <!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml"
    href="https://shop.example.com/sale" style="height:40px;width:200px" arcsize="10%"
    fillcolor="#0b57d0"><center>Shop the sale</center></v:roundrect><![endif]-->
  <!--[if !mso]><!--><a
      class="button"
      style="background:#0b57d0;color:#fff;padding:12px 24px;border-radius:4px"
      target="_blank"
      href="https://shop.example.com/sale">Shop the sale</a><!--<![endif]-->
  <p>Questions? <a href="mailto:help@example.com?subject=Sale">Write to us</a> or call
  <a href="tel:+442079460958">020 7946 0958</a>.</p>
  <p><a href=https://shop.example.com/stores>Find a store</a> ·
  <a href="/relative/path">relative</a> ·
  <a data-hub-notrack href="https://partner.example.net/offer">Our partner</a></p>
  <!-- old banner: <a href="https://shop.example.com/winter">Winter</a> -->
  <map name="m"><area shape="rect" coords="0,0,10,10" href="http://shop.example.com/map"></map>
</td></tr>
<tr><td style="font-size:12px">
  <a href="{LINKS.preferences_url}">Manage preferences</a> ·
  <a href="{LINKS.unsubscribe_url}">Unsubscribe</a>
</td></tr></table>
</BODY>
</html>
"""
TRACKED_ORDER = [
    "https://shop.example.com/?utm_source=hub&utm_medium=email",
    "https://shop.example.com/garden?c=1&d=2",
    "https://shop.example.com/sale",  # the Outlook button
    "https://shop.example.com/sale",  # the same link for every other client
    "https://shop.example.com/stores",
    "http://shop.example.com/map",
]


def test_a_newsletter_has_its_web_links_tracked_in_order_and_the_rest_left_alone() -> None:
    tracker = Tracker()
    out = tracked_html(NEWSLETTER, track=tracker, keep=KEEP)
    assert tracker.calls == TRACKED_ORDER
    tracked = [f"{HUB}/c/d42.sig/{n}?v=1&k=2" for n in (0, 1, 2, 3)]
    assert parsed(out).hrefs == [
        "#content",
        tracked[0],
        tracked[1],
        tracked[2],  # the non-Outlook button (the VML one sits in a comment for the parser)
        "mailto:help@example.com?subject=Sale",
        "tel:+442079460958",
        tracked[3],
        "/relative/path",
        "https://partner.example.net/offer",
        f"{HUB}/c/d42.sig/4?v=1&k=2",
        LINKS.preferences_url,
        LINKS.unsubscribe_url,
    ]
    assert 'href="https://shop.example.com/winter"' in out  # commented out: not a link
    assert f'urn:schemas-microsoft-com:vml"\n    href="{HUB}/c/d42.sig/2?' in out


def test_everything_but_the_href_values_is_unchanged_byte_for_byte() -> None:
    calls: list[str] = []

    def track(url: str) -> str:
        calls.append(url)
        return f"{HUB}/c/{len(calls) - 1}"

    out = tracked_html(NEWSLETTER, track=track, keep=KEEP)
    # Put each original value back where its tracked one went: the document comes back whole.
    restored = out
    for n, url in reversed(list(enumerate(calls))):  # /c/10 before /c/1
        restored = restored.replace(f"{HUB}/c/{n}", url.replace("&", "&amp;"))
    assert len(calls) == len(TRACKED_ORDER)
    assert restored == NEWSLETTER


def test_quote_style_is_kept_and_the_new_value_is_escaped_for_it() -> None:
    def hostile(url: str) -> str:
        return f"{HUB}/c/1?next=\"'><script>&x"

    out = tracked_html(
        """<a href='https://a.example/'>1</a><a href="https://b.example/">2</a>""", track=hostile
    )
    assert out == (
        "<a href='https://hub.example.org/c/1?next=&quot;&#x27;&gt;&lt;script&gt;&amp;x'>1</a>"
        '<a href="https://hub.example.org/c/1?next=&quot;&#x27;&gt;&lt;script&gt;&amp;x">2</a>'
    )
    assert parsed(out).hrefs == [f"{HUB}/c/1?next=\"'><script>&x"] * 2


def test_an_unquoted_value_stays_unquoted_when_it_can_and_gains_quotes_when_it_must() -> None:
    document = "<a href=https://a.example/x>x</a>"
    assert tracked_html(document, track=lambda u: f"{HUB}/c/7") == f"<a href={HUB}/c/7>x</a>"
    assert tracked_html(document, track=lambda u: f"{HUB}/c?a=1") == f'<a href="{HUB}/c?a=1">x</a>'


def test_upper_case_newlines_spaces_around_equals_and_attributes_on_both_sides() -> None:
    document = (
        '<AREA\n\tSHAPE="rect"\n\tHREF = "  HTTPS://Shop.Example.com/A  "\n\tALT="a > b">'
        "<a\r\nid=x\r\nhref='https://b.example/?q=a%20b'\r\ntitle='x'\r\n>b</a>"
    )
    tracker = Tracker()
    out = tracked_html(document, track=tracker)
    assert tracker.calls == ["HTTPS://Shop.Example.com/A", "https://b.example/?q=a%20b"]
    assert parsed(out).hrefs == [f"{HUB}/c/d42.sig/{n}?v=1&k=2" for n in (0, 1)]
    assert out.startswith('<AREA\n\tSHAPE="rect"\n\tHREF = "https://hub.example.org/c/d42')
    assert out.endswith("\r\ntitle='x'\r\n>b</a>")


@pytest.mark.parametrize(
    "href",
    [
        "mailto:a@example.com",
        "tel:+15551234567",
        "sms:+15551234567",
        "#top",
        "/path",
        "page.html",
        "//cdn.example.com/x",
        "ftp://files.example.com/x",
        "javascript:void(0)",
        "https://",
        "https://{{ data.domain }}/x",
        "{{ data.url }}",
        "https://shop.example.com/{% if x %}a{% endif %}",
        "",
    ],
)
def test_links_that_are_not_absolute_web_urls_are_left_alone(href: str) -> None:
    document = f'<p><a href="{href}">x</a></p>'
    tracker = Tracker()
    assert tracked_html(document, track=tracker) == document
    assert tracker.calls == []


def test_keep_compares_after_unescaping_and_notrack_wins_wherever_it_sits() -> None:
    unsubscribe = "https://hub.example.org/u/tok?list=1&who=2"
    document = (
        '<a href="https://hub.example.org/u/tok?list=1&amp;who=2">Unsubscribe</a>'
        '<a href="https://x.example/1" DATA-HUB-NOTRACK="">1</a>'
        '<a data-hub-notrack href="https://x.example/2">2</a>'
        "<a href='https://x.example/3'>3</a>"
    )
    tracker = Tracker()
    out = tracked_html(document, track=tracker, keep={unsubscribe})
    assert tracker.calls == ["https://x.example/3"]
    assert parsed(out).hrefs[:3] == [unsubscribe, "https://x.example/1", "https://x.example/2"]


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("https://x.example/?a=1&amp;b=2&amp;c=3", "https://x.example/?a=1&b=2&c=3"),
        ("https://x.example/?a=1&b=2", "https://x.example/?a=1&b=2"),
        ("https://x.example/?q=&lt;1&gt;&amp;r=&#39;s&#x27;", "https://x.example/?q=<1>&r='s'"),
        ("https://x.example/?q=&amp;lt;", "https://x.example/?q=&lt;"),
        ("https://x.example/caf&eacute;", "https://x.example/café"),
    ],
)
def test_the_url_tracked_is_the_one_a_browser_reads_from_the_attribute(
    written: str, meant: str
) -> None:
    tracker = Tracker()
    tracked_html(f'<a href="{written}">x</a>', track=tracker)
    assert tracker.calls == [meant]
    assert parsed(f'<a href="{written}">x</a>').hrefs == [meant]  # the parser agrees


def test_only_the_first_href_is_tracked_as_only_it_is_followed() -> None:
    document = '<a href="https://first.example/" href="https://second.example/">x</a>'
    tracker = Tracker()
    out = tracked_html(document, track=tracker)
    assert tracker.calls == ["https://first.example/"]
    assert 'href="https://second.example/"' in out


def test_a_tag_with_an_unclosed_quote_is_left_as_written() -> None:
    document = '<a title="oops href="https://x.example/">x</a>'
    tracker = Tracker()
    assert tracked_html(document, track=tracker) == document
    assert tracker.calls == []


def test_comments_end_where_html_ends_them() -> None:
    document = (
        '<!--><a href="https://a.example/">a</a>'  # <!--> is a whole, empty comment
        '<!---><a href="https://b.example/">b</a>'  # so is <!--->
        '<!-- <a href="https://c.example/"> -- still a comment --><a href="https://d.example/">'
        '<!-- never closed <a href="https://e.example/">'
    )
    tracker = Tracker()
    tracked_html(document, track=tracker)
    assert tracker.calls == ["https://a.example/", "https://b.example/", "https://d.example/"]


def test_a_quoted_value_holding_a_less_than_sign_leaves_the_tag_as_written() -> None:
    document = '<a title="1 < 2" href="https://x.example/">x</a><a href="https://y.example/">'
    tracker = Tracker()
    out = tracked_html(document, track=tracker)
    assert tracker.calls == ["https://y.example/"]
    assert out.startswith('<a title="1 < 2" href="https://x.example/">')


@pytest.mark.parametrize(
    "document",
    [
        "<!--" * 50_000,  # comments that never close
        '<a "' + '<a" "' * 40_000,  # quotes that pair up across tags, and no ">"
        '<a title="' + ">" * 100_000 + '<a "x"' * 20_000,
        "<a href=x " * 20_000,
        "</body" * 50_000,
    ],
)
def test_hostile_markup_is_scanned_in_one_pass(document: str) -> None:
    # Each of these took minutes while a pattern could restart a long scan at every "<".
    started = time.monotonic()
    out = tracked_html(document, track=Tracker(), pixel_url=f"{HUB}/o/1")
    assert time.monotonic() - started < 2.0
    assert out == document + PIXEL.format(src=f"{HUB}/o/1")


@pytest.mark.parametrize("tail", [")" * 50_000, "." * 50_000, "?!" * 25_000, "]." * 25_000])
def test_a_url_ending_in_a_long_run_of_punctuation_is_trimmed_in_one_pass(tail: str) -> None:
    started = time.monotonic()
    out = tracked_text("https://x.example/a" + tail, track=lambda u: "T")
    assert time.monotonic() - started < 2.0
    assert out == "T" + tail


def test_tags_that_only_start_like_a_link_are_not_links() -> None:
    document = '<abbr href="https://x.example/">x</abbr><address>y</address><a-b href="https://x.example/">'
    tracker = Tracker()
    assert tracked_html(document, track=tracker) == document


def test_the_pixel_goes_before_the_last_closing_body_tag_whatever_its_case() -> None:
    document = "<html><body><p>x</p><pre>&lt;/body&gt;</pre></BODY >\n</html>\n"
    out = tracked_html(document, track=Tracker(), pixel_url=f"{HUB}/o/d42.sig?a=1&b=2")
    pixel = PIXEL.format(src=f"{HUB}/o/d42.sig?a=1&amp;b=2")
    assert out == f"<html><body><p>x</p><pre>&lt;/body&gt;</pre>{pixel}</BODY >\n</html>\n"
    (image,) = parsed(out).images
    assert image == {
        "src": f"{HUB}/o/d42.sig?a=1&b=2",
        "width": "1",
        "height": "1",
        "alt": "",
        "style": "display:block;border:0;width:1px;height:1px",
    }


def test_without_a_body_tag_the_pixel_is_appended() -> None:
    fragment = '<p>Hello <a href="https://x.example/">there</a></p>'
    out = tracked_html(fragment, track=lambda u: f"{HUB}/c/0", pixel_url=f"{HUB}/o/1")
    assert out == f'<p>Hello <a href="{HUB}/c/0">there</a></p>' + PIXEL.format(src=f"{HUB}/o/1")


def test_a_rendered_email_keeps_its_footer_links_and_gets_its_pixel() -> None:
    body = (
        '<p>Hi {{ contact.name }}, <a href="{{ data.url }}">your order</a> and '
        '<a href="https://shop.example.com/help?a=1&b=2">help</a>.</p>'
    )
    text = "Hi {{ contact.name }}, your order: {{ data.url }}.\nHelp: https://shop.example.com/help"
    compiled = Renderer(company_name="Acme").compile(
        TemplateDoc("order", {"": Parts(email_subject="Order", email_html=body, email_text=text)})
    )
    order = "https://shop.example.com/o/1?x=1&y=it's"  # both escaped by the HTML part
    context = {"contact": {"name": "Ada"}, "data": {"url": order}}
    rendered = compiled.render(Channel.EMAIL, locale="en", context=context, links=LINKS)
    assert rendered.html is not None
    assert rendered.text is not None
    tracker = Tracker()
    html_out = tracked_html(rendered.html, track=tracker, keep=KEEP, pixel_url=f"{HUB}/o/x")
    text_out = tracked_text(rendered.text, track=tracker, keep=KEEP)
    assert tracker.calls == [
        order,
        "https://shop.example.com/help?a=1&b=2",
        order,  # the text part's own occurrence
        "https://shop.example.com/help",
    ]
    hrefs = parsed(html_out).hrefs
    assert LINKS.preferences_url in hrefs
    assert LINKS.unsubscribe_url in hrefs
    assert hrefs.count(f"{HUB}/c/d42.sig/0?v=1&k=2") == 1
    pixel = PIXEL.format(src=f"{HUB}/o/x")
    assert html_out.index(pixel) + len(pixel) == html_out.lower().rindex("</body>")
    assert f"your order: {HUB}/c/d42.sig/0?v=1&k=2.\n" in text_out
    assert f"{LINKS.unsubscribe_url}\n" in text_out  # the footer's link kept as it was


@pytest.mark.parametrize(
    ("text", "expected_url", "after"),
    [
        ("Go to https://x.example/a.", "https://x.example/a", "."),
        ("Go to https://x.example/a, then", "https://x.example/a", ", then"),
        ("Really? https://x.example/a?q=1!", "https://x.example/a?q=1", "!"),
        ("Two: https://x.example/a;", "https://x.example/a", ";"),
        ("see https://x.example/a:", "https://x.example/a", ":"),
        ("(see https://x.example/a)", "https://x.example/a", ")"),
        ("(see https://x.example/wiki/A_(b)).", "https://x.example/wiki/A_(b)", ")."),
        ("[https://x.example/a]", "https://x.example/a", "]"),
        ("{https://x.example/a}", "https://x.example/a", "}"),
        ("'https://x.example/a'", "https://x.example/a", "'"),
        ('"https://x.example/a"', "https://x.example/a", '"'),
        ("<https://x.example/a?b=1&c=2>", "https://x.example/a?b=1&c=2", ">"),
        ("https://x.example/it's-here", "https://x.example/it's-here", ""),
        ("https://x.example/a...", "https://x.example/a", "..."),
        ("HTTP://X.EXAMPLE/A\n", "HTTP://X.EXAMPLE/A", "\n"),
    ],
)
def test_text_urls_leave_the_sentence_punctuation_outside(
    text: str, expected_url: str, after: str
) -> None:
    tracker = Tracker()
    out = tracked_text(text, track=tracker)
    assert tracker.calls == [expected_url]
    start = text.index(expected_url)
    assert out == text[:start] + f"{HUB}/c/d42.sig/0?v=1&k=2" + after


def test_text_calls_track_per_occurrence_in_order_and_respects_keep() -> None:
    text = (
        "Your code is ready: https://x.example/b (and https://x.example/a).\n"
        "Again: https://x.example/b\n"
        "Not links: mailto:a@example.com, www.example.com, xhttps://x.example/, "
        "/https://x.example/, https://{{ data.domain }}/x, https://\n"
        "-- \nAcme\nUnsubscribe: https://hub.example.org/u/tok-1\n"
    )
    tracker = Tracker()
    out = tracked_text(text, track=tracker, keep=KEEP)
    assert tracker.calls == ["https://x.example/b", "https://x.example/a", "https://x.example/b"]
    assert out == (
        f"Your code is ready: {HUB}/c/d42.sig/0?v=1&k=2 (and {HUB}/c/d42.sig/1?v=1&k=2).\n"
        f"Again: {HUB}/c/d42.sig/0?v=1&k=2\n"
        "Not links: mailto:a@example.com, www.example.com, xhttps://x.example/, "
        "/https://x.example/, https://{{ data.domain }}/x, https://\n"
        "-- \nAcme\nUnsubscribe: https://hub.example.org/u/tok-1\n"
    )


def test_an_sms_body_with_a_url_inside_another_is_one_link() -> None:
    sms = "Track: https://t.example/r?to=https://shop.example.com/o/1 Reply STOP to opt out"
    tracker = Tracker()
    out = tracked_text(sms, track=tracker)
    assert tracker.calls == ["https://t.example/r?to=https://shop.example.com/o/1"]
    assert out == f"Track: {HUB}/c/d42.sig/0?v=1&k=2 Reply STOP to opt out"


def test_nothing_to_track_returns_the_same_text() -> None:
    assert tracked_text("Hello, no links here.", track=Tracker()) == "Hello, no links here."
    assert tracked_html("<p>Hello</p>", track=Tracker()) == "<p>Hello</p>"


WORDS = "The new trains stop at every station along the coast, twice an hour. "


@pytest.mark.parametrize(
    ("html", "harmless"),
    [
        ("<p>Your parcel is waiting.</p>", False),  # short, no picture: the pixel alone is one
        ('<p>Hi</p><IMG SRC="https://shop.example/logo.png" alt="">', True),  # has its own
        ("<p>Hi</p><img/>", True),
        ("<p>" + WORDS * 50 + "</p>", True),  # enough text that no image-only rule fires
        # Long in bytes but not in text: markup, styles and entities do not count.
        ("<style>" + "p{color:red}" * 400 + "</style><p>Hi</p>", False),
        ('<p class="' + "x" * 4000 + '">Hi</p>', False),
        ("<p>" + "&nbsp;" * 1000 + "Hi</p>", False),
        ("<p>" + "<imgx>" * 10 + "Hi</p>", False),  # not an img tag
    ],
)
def test_the_pixel_goes_only_where_spam_filters_would_not_read_it_as_image_spam(
    html: str, harmless: bool
) -> None:
    assert pixel_is_harmless(html) is harmless


def test_text_just_over_the_image_only_rules_limit_takes_a_pixel() -> None:
    enough = "a" * IMAGE_ONLY_TEXT
    assert pixel_is_harmless(f"<p>{enough}</p>") is True
    assert pixel_is_harmless(f"<p>{enough[1:]}</p>") is False
