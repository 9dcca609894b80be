"""Self-service tokens (RELIABILITY 13): signed, scoped, expiring, surviving a key rotation."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from hub.preferences.tokens import ExpiredToken, InvalidToken, LinkSigner, Purpose

KEY = "k3y-of-contact-7"
DAY = dt.timedelta(days=1)
OLD, NEW = "old-secret-key-0123456789", "new-secret-key-9876543210"


def test_a_token_names_one_contact_topic_and_purpose() -> None:
    signer = LinkSigner([NEW], max_age=DAY)
    token = signer.sign(Purpose.UNSUBSCRIBE, 7, "news", link_key=KEY)
    claims = signer.verify(Purpose.UNSUBSCRIBE, token)
    assert (claims.contact_id, claims.topic) == (7, "news")
    assert claims.issued_at is not None
    assert abs((claims.issued_at - dt.datetime.now(dt.UTC)).total_seconds()) < 5


@pytest.mark.parametrize("other", [Purpose.PREFERENCES, Purpose.CONFIRM])
def test_a_token_for_one_purpose_opens_nothing_else(other: Purpose) -> None:
    signer = LinkSigner([NEW], max_age=DAY)
    with pytest.raises(InvalidToken):
        signer.verify(other, signer.sign(Purpose.UNSUBSCRIBE, 7, "news", link_key=KEY))


def test_links_signed_before_a_rotation_keep_working_until_the_old_key_goes() -> None:
    before = LinkSigner([OLD], max_age=DAY).sign(Purpose.PREFERENCES, 7, link_key=KEY)
    rotated = LinkSigner([NEW, OLD], max_age=DAY)  # newest first, as settings.link_secrets()
    assert rotated.verify(Purpose.PREFERENCES, before).contact_id == 7
    after = rotated.sign(Purpose.PREFERENCES, 7, link_key=KEY)
    assert LinkSigner([NEW], max_age=DAY).verify(Purpose.PREFERENCES, after).contact_id == 7
    with pytest.raises(InvalidToken):
        LinkSigner([NEW], max_age=DAY).verify(Purpose.PREFERENCES, before)


def test_tampered_and_expired_tokens_are_refused() -> None:
    signer = LinkSigner([NEW], max_age=DAY)
    token = signer.sign(Purpose.PREFERENCES, 7, link_key=KEY)
    _, stamp, signature = token.split(".")
    other = LinkSigner([NEW], max_age=DAY).sign(Purpose.PREFERENCES, 8, link_key=KEY).split(".")[0]
    for bad in (f"{other}.{stamp}.{signature}", token[:-2] + "xy", "", "a.b.c", token + "."):
        with pytest.raises(InvalidToken):
            signer.verify(Purpose.PREFERENCES, bad)
    yesterday = LinkSigner([NEW], max_age=DAY, clock=lambda: time.time() - 2 * 86400)
    with pytest.raises(ExpiredToken):
        signer.verify(Purpose.PREFERENCES, yesterday.sign(Purpose.PREFERENCES, 7, link_key=KEY))
