"""The classifier, case by case: what a status code and the words of a diagnostic mean for one
recipient (hard, soft, blocked, no bounce), whatever format they came in."""

from __future__ import annotations

import pytest

from hub.channels.email.bounce_class import classify, has_clue, is_specific, status_in
from hub.channels.email.reports import Kind

HARD, SOFT, BLOCKED, NONE = Kind.HARD_BOUNCE, Kind.SOFT_BOUNCE, Kind.BLOCKED, Kind.NOT_BOUNCE


@pytest.mark.parametrize(
    ("action", "status", "detail", "kind"),
    [
        # news, not failures
        ("delayed", "4.2.2", "452 4.2.2 Mailbox full", NONE),
        ("Delivered", "2.0.0", "250 ok", NONE),
        ("relayed", "2.0.0", None, NONE),
        ("expanded", "2.0.0", None, NONE),
        # bad mailbox or domain
        ("failed", "5.1.1", "550 5.1.1 <a@example.org>: User unknown", HARD),
        ("failed", "5.1.0", "550 5.1.0 Address rejected", HARD),
        ("failed", "5.1.2", "Host or domain name not found", HARD),
        ("failed", "5.1.3", None, HARD),
        ("failed", "5.1.6", "Mailbox has moved", HARD),
        ("failed", "5.1.10", "Recipient address has null MX", HARD),
        (
            "failed",
            "5.2.1",
            "550 5.2.1 The email account that you tried to reach is disabled",
            HARD,
        ),
        ("failed", "5.4.4", "Unable to route", HARD),
        ("failed", "5.7.13", "525 5.7.13 Disabled recipient address", HARD),
        ("failed", None, "smtp; 550 No such user here", HARD),
        ("failed", "5.0.0", "smtp; 550 <a@example.org>: Recipient address rejected.", HARD),
        ("failed", "5.0.0", "550 The email account that you tried to reach does not exist", HARD),
        ("failed", "5.7.1", "553 Invalid recipient a@example.org", HARD),
        ("failed", "5.4.1", "550 5.4.1 Recipient address rejected: Access denied", HARD),
        # full, too large, gave up on a temporary failure
        ("failed", "5.2.2", "552 5.2.2 Mailbox full", SOFT),
        ("failed", "4.2.2", "452 4.2.2 Over quota", SOFT),
        ("failed", "5.2.3", "552 5.2.3 Message too large", SOFT),
        ("failed", "5.3.4", "Message size exceeds fixed limit", SOFT),
        ("failed", "5.0.0", "550 User has exceeded storage quota", SOFT),
        ("failed", "5.1.1", "552 sorry, mailbox a@example.org is over quota", SOFT),
        ("failed", "4.4.7", "Delivery time expired", SOFT),
        ("failed", "4.1.1", "450 4.1.1 Recipient address rejected: User unknown", SOFT),
        ("failed", "4.7.0", "421 4.7.0 temporarily deferred due to user complaints", SOFT),
        # refusals: policy, spam, reputation, authentication, our own address
        ("failed", "5.7.1", "550 5.7.1 Message rejected as spam", BLOCKED),
        ("failed", "5.7.26", "Unauthenticated email is not accepted (DMARC)", BLOCKED),
        ("failed", "5.0.0", "554 Blocked - see https://dnsbl.example/lookup", BLOCKED),
        ("failed", None, "550 Rejected for policy reasons", BLOCKED),
        ("failed", "5.1.1", "550 5.1.1 blocked: your IP is on our blocklist", BLOCKED),
        ("failed", None, "550 SPF check failed", BLOCKED),
        ("failed", None, "554 poor reputation of the sending IP", BLOCKED),
        ("failed", "5.1.8", "501 5.1.8 Sender address rejected", BLOCKED),
        ("failed", "5.0.0", "553 Domain of sender address does not exist", BLOCKED),
        ("failed", "5.2.1", "550-5.2.1 receiving mail at a rate that prevents delivery", BLOCKED),
        # no clue: soft (see the module's docstring for why not hard)
        ("failed", "5.0.0", "550 Requested action not taken", SOFT),
        ("failed", None, None, SOFT),
        ("failed", "5.5.0", "554 Transaction failed", SOFT),
    ],
)
def test_classify(action: str, status: str | None, detail: str | None, kind: Kind) -> None:
    assert classify(action=action, status=status, detail=detail) is kind


@pytest.mark.parametrize(
    ("text", "success", "status"),
    [
        ("smtp; 550 5.1.1 <a@example.org>: User unknown", False, "5.1.1"),
        ("smtp; 550-5.1.10 null MX", False, "5.1.10"),
        ("smtp; 550 #5.1.0 Address rejected.", False, "5.1.0"),
        ("smtp; 552 Mailbox over quota", False, "5.2.2"),
        ("smtp; 451 Try later", False, "4.0.0"),
        ("Out: 250 2.0.0 Ok\nIn: RCPT\nOut: 550 5.1.1 unknown", False, "5.1.1"),
        ("Out: 250 2.0.0 Ok", False, None),
        ("2.0.0", True, "2.0.0"),
        ("mail server v2.0.8 at 192.0.2.1", False, None),
        ("no code at all", False, None),
        (None, False, None),
    ],
)
def test_status_in(text: str | None, success: bool, status: str | None) -> None:
    assert status_in(text, success=success) == status


def test_specific_codes_and_clues() -> None:
    specific = [is_specific(code) for code in ("5.1.1", "4.2.2", "5.7.1", "5.0.0", None)]
    assert specific == [True, True, True, False, False]
    texts = ("Mailbox full", "user unknown", "spam", "Transaction failed", None)
    assert [has_clue(text) for text in texts] == [True, True, True, False, False]
