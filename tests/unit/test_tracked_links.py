"""Signed click and open URLs: they say where they lead, and nothing else can be made of them."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.dispatch.tracked_links import BadToken, TrackedLinks
from hub.domain import EngagementKind

AT = dt.datetime(2026, 12, 7, 9, 30, 41, tzinfo=dt.UTC)
URL = "https://shop.example.com/winter?utm_source=hub&size=m#top"


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_a_click_url_carries_its_delivery_link_and_target() -> None:
    links = TrackedLinks(["k1"], public_url="https://hub.example.com/")
    made = links.click_url(delivery_id=987654321, index=3, url=URL, at=AT)
    assert made.startswith("https://hub.example.com/t/c/")
    read = links.read(EngagementKind.CLICK, _token(made))
    assert (read.delivery_id, read.link_index, read.url) == (987654321, 3, URL)
    assert read.issued_at == AT.replace(second=0)


def test_an_open_url_is_a_gif_of_its_delivery() -> None:
    links = TrackedLinks(["k1"], public_url="https://hub.example.com")
    made = links.open_url(delivery_id=42, at=AT)
    assert made.endswith(".gif")
    read = links.read(EngagementKind.OPEN, _token(made))
    assert (read.kind, read.delivery_id, read.url) == (EngagementKind.OPEN, 42, None)


def test_links_made_before_a_key_rotation_still_read() -> None:
    old = TrackedLinks(["old"], public_url="https://hub.example.com")
    made = old.click_url(delivery_id=1, index=1, url=URL, at=AT)
    rotated = TrackedLinks(["new", "old"], public_url="https://hub.example.com")
    assert rotated.read(EngagementKind.CLICK, _token(made)).url == URL
    with pytest.raises(BadToken):
        TrackedLinks(["new"], public_url="x").read(EngagementKind.CLICK, _token(made))


@pytest.mark.parametrize(
    "damage",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # the signature
        lambda t: ("B" if t[0] != "B" else "C") + t[1:],  # the claims
        lambda t: t.split(".")[0],  # no signature
        lambda t: "." + t.split(".")[1],  # no claims
        lambda t: t + "!",
        lambda t: "",
    ],
)
def test_a_damaged_token_is_refused(damage: object) -> None:
    links = TrackedLinks(["k1"], public_url="https://hub.example.com")
    token = _token(links.click_url(delivery_id=7, index=1, url=URL, at=AT))
    assert callable(damage)
    with pytest.raises(BadToken):
        links.read(EngagementKind.CLICK, damage(token))


def test_an_open_token_is_not_a_click_and_the_reverse() -> None:
    links = TrackedLinks(["k1"], public_url="https://hub.example.com")
    pixel = _token(links.open_url(delivery_id=7, at=AT))
    click = _token(links.click_url(delivery_id=7, index=1, url=URL, at=AT))
    with pytest.raises(BadToken):
        links.read(EngagementKind.CLICK, pixel.removesuffix(".gif"))
    with pytest.raises(BadToken):
        links.read(EngagementKind.OPEN, click)


def test_only_web_links_within_the_length_are_trackable() -> None:
    assert TrackedLinks.trackable("https://a.example/")
    assert TrackedLinks.trackable("http://a.example/")
    for url in ("mailto:a@b.example", "javascript:alert(1)", "tel:+1", "https://a/" + "x" * 2100):
        assert not TrackedLinks.trackable(url)
