"""Hub behind a real relay: Debian's Postfix on loopback takes Hub's mail, delivers it to a
maildir or sends back real DSNs (unknown user, mailbox full, deferred then expired), and the
DSNs reach `hub serve`'s inbound mail listener through Postfix's own transport. Each case ends
in the state issue 20 asks for, on SQLite and PostgreSQL; a second Hub's DSN arriving at the
first changes nothing there.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_missing
from tests.mta.hub_process import (
    BOUNCE_DOMAIN,
    BOUNCES,
    HELO,
    PUBLIC_URL,
    UNSUBSCRIBE,
    RunningHub,
    database,
    delivery,
    delivery_in,
    hub_serving,
    ok,
    send_email,
    suppressions,
    wait_for,
)
from tests.mta.postfix import DEAD_DOMAIN, FULL_USER, MAIL_DOMAIN, PostfixMissing, PrivatePostfix

pytestmark = pytest.mark.e2e
SECRET = "a-secret-for-the-postfix-tests-only"
MAIL = re.escape(MAIL_DOMAIN)
TEXT = "Our autumn news: the new timetable starts on Monday.\n\nSee you soon."


@pytest.fixture(scope="module")
def postfix() -> Iterator[PrivatePostfix]:
    instance = PrivatePostfix(f"bounces-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}")
    try:
        instance.start()
    except PostfixMissing as exc:
        instance.stop()
        service_missing("Debian's Postfix (a private instance on loopback)", exc)
    yield instance
    instance.stop()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def hub(
    request: pytest.FixtureRequest,
    postfix: PrivatePostfix,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningHub]:
    """The first Hub: it sends through Postfix, and Postfix sends every mail for the bounce
    domain (the VERP addresses its DSNs go to) to this Hub's listener."""
    folder = tmp_path_factory.mktemp(f"hub-{request.param}")
    with (
        database(request.param, folder) as url,
        hub_serving(folder, url, smtp_port=postfix.port, secret=SECRET, inbound=True) as running,
    ):
        postfix.route(BOUNCE_DOMAIN, f"smtp:[127.0.0.1]:{running.inbound_port}")
        yield running


@contextlib.contextmanager
def shown_on_failure(postfix: PrivatePostfix, *hubs: RunningHub) -> Iterator[None]:
    """On failure, print what Postfix and each Hub logged: pytest shows it beside the error."""
    with postfix.printed_on_failure():
        try:
            yield
        except BaseException:
            for running in hubs:
                print(f"--- hub serve at {running.base} ---\n{running.output()[-6000:]}")
            raise


def queue_id(postfix: PrivatePostfix, message_id: str) -> str:
    """Postfix's queue id for the message Hub gave `message_id`."""
    logged = postfix.wait_log(rf"(\w+): message-id={re.escape(message_id)}")
    return logged.group(1)


def dsn_reached_hub(postfix: PrivatePostfix, hub: RunningHub, original: str, what: str) -> str:
    """Wait until Postfix wrote a DSN of kind `what` ("non-delivery" or "delay") about the
    queued message `original` and delivered it to Hub's listener; the DSN's queue id."""
    made = postfix.wait_log(rf"{original}: sender {what} notification: (\w+)", timeout=60)
    dsn = made.group(1)
    postfix.wait_log(
        rf"{dsn}: to=<bounces\+[^>]+@{re.escape(BOUNCE_DOMAIN)}>, "
        rf"relay=127\.0\.0\.1\[127\.0\.0\.1\]:{hub.inbound_port},.* status=sent"
    )
    return dsn


def not_suppressed_for_good(hub: RunningHub, address: str) -> None:
    lasting = [s for s in suppressions(hub, address) if s["expires_at"] is None]
    assert lasting == [], lasting


def test_a_good_mailbox_gets_a_clean_message_and_the_delivery_is_sent(
    postfix: PrivatePostfix, hub: RunningHub
) -> None:
    with shown_on_failure(postfix, hub):
        notification = send_email(
            hub, "ann", postfix.address("ann"), text=TEXT, subject="Autumn news"
        )
        sent = delivery_in(hub, notification, "sent", "delivered")
        message_id = sent["provider_id"]
        postfix.wait_log(rf"{queue_id(postfix, message_id)}: to=<ann@{MAIL}>.* status=sent")
        (message,) = [m for m in postfix.maildir("ann") if m["Message-ID"] == message_id]
        assert not message.defects, message.defects
        assert message["Subject"] == "Autumn news"
        assert message["To"] in {f"Ann <ann@{MAIL_DOMAIN}>", f"ann@{MAIL_DOMAIN}"}
        assert message["From"] == f"Hub News <news@{BOUNCE_DOMAIN}>"
        assert message["Date"] is not None
        # The envelope sender Postfix recorded is the VERP address naming this message.
        local, domain = BOUNCES.split("@")
        assert re.fullmatch(rf"<{local}\+hub-[^@]+@{domain}>", message["Return-Path"])
        # Hub greeted Postfix with its HELO name, which Postfix's HELO rules accepted.
        assert f"from {HELO} " in message["Received"]
        unsubscribe = message["List-Unsubscribe"]
        assert re.fullmatch(rf"<{PUBLIC_URL}/[^>]+>, <mailto:{UNSUBSCRIBE}[^>]*>", unsubscribe)
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        body = message.get_body(preferencelist=("plain",))
        assert body is not None
        assert "the new timetable starts on Monday" in body.get_content()
        assert delivery(hub, notification)["state"] in {"sent", "delivered"}
        assert suppressions(hub, postfix.address("ann")) == []


def test_an_unknown_users_dsn_bounces_the_delivery_and_suppresses_the_address(
    postfix: PrivatePostfix, hub: RunningHub
) -> None:
    address = postfix.address("ghost")
    with shown_on_failure(postfix, hub):
        notification = send_email(hub, "ghost", address, text=TEXT, subject="Autumn news")
        sent = delivery_in(hub, notification, "sent", "bounced")
        dsn_reached_hub(postfix, hub, queue_id(postfix, sent["provider_id"]), "non-delivery")
        bounced = delivery_in(hub, notification, "bounced")
        assert bounced["reason"] == "hard_bounce"
        assert bounced["error_code"] == "5.1.1"
        (suppressed,) = wait_for(f"{address} suppressed", lambda: suppressions(hub, address))
        assert suppressed["reason"] == "hard_bounce"
        assert suppressed["expires_at"] is None


def test_a_full_mailboxs_dsn_fails_the_delivery_softly(
    postfix: PrivatePostfix, hub: RunningHub
) -> None:
    address = postfix.address(FULL_USER)
    # Larger than the room left in the full mailbox (tests/mta/postfix.py: FULL_*).
    long_text = TEXT + "\n\n" + "All the news that fits, and some that does not. " * 120
    with shown_on_failure(postfix, hub):
        notification = send_email(hub, "fuller", address, text=long_text, subject="Long news")
        sent = delivery_in(hub, notification, "sent", "failed")
        original = queue_id(postfix, sent["provider_id"])
        postfix.wait_log(rf"{original}: to=<{FULL_USER}@{MAIL}>.* dsn=5\.2\.2, status=bounced")
        dsn_reached_hub(postfix, hub, original, "non-delivery")
        failed = delivery_in(hub, notification, "failed")
        assert failed["error_code"] == "5.2.2"
        not_suppressed_for_good(hub, address)


def test_deferred_then_expired_the_delay_changes_nothing_and_the_expiry_fails_softly(
    postfix: PrivatePostfix, hub: RunningHub
) -> None:
    address = f"far@{DEAD_DOMAIN}"
    with shown_on_failure(postfix, hub):
        notification = send_email(hub, "far", address, text=TEXT, subject="Autumn news")
        sent = delivery_in(hub, notification, "sent")
        original = queue_id(postfix, sent["provider_id"])
        postfix.wait_log(rf"{original}: to=<{re.escape(address)}>.* status=deferred")
        # Postfix's "Delayed Mail (still being retried)", Action: delayed, reached Hub (its
        # listener answered 250): the delivery is still sent and nobody is suppressed.
        dsn_reached_hub(postfix, hub, original, "delay")
        assert delivery(hub, notification)["state"] == "sent"
        assert suppressions(hub, address) == []
        # Given up after the queue lifetime: Action: failed with Status: 4.4.1.
        dsn_reached_hub(postfix, hub, original, "non-delivery")
        failed = delivery_in(hub, notification, "failed")
        assert failed["error_code"] == "4.4.1"
        not_suppressed_for_good(hub, address)


def test_a_second_hubs_dsn_suppresses_nobody_in_the_first(
    postfix: PrivatePostfix, hub: RunningHub, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    address = postfix.address("nobody-here")
    # The first Hub knows this person too, and has never sent them anything.
    ok(hub.api.put("/v1/contacts/stranger", json={"name": "Stranger", "email": address}))
    kind = "postgresql" if "postgresql" in request.node.callspec.id else "sqlite"
    with (
        database(kind, tmp_path) as url,
        # Same secret, same bounce mailbox; no listener: its DSNs go to the first Hub.
        hub_serving(tmp_path, url, smtp_port=postfix.port, secret=SECRET, inbound=False) as other,
        shown_on_failure(postfix, hub, other),
    ):
        notification = send_email(other, "stranger", address, text=TEXT, subject="Hello")
        sent = delivery_in(other, notification, "sent")
        dsn_reached_hub(postfix, hub, queue_id(postfix, sent["provider_id"]), "non-delivery")

        def kept() -> list[dict[str, object]]:
            found = ok(hub.api.get("/v1/bounces/unmatched"))
            return [r for r in found["items"] if address in (r["recipients"] or "")]

        (report,) = wait_for("the other Hub's DSN kept as unmatched", kept)
        assert report["status"] == "5.1.1"
        assert suppressions(hub, address) == []
        assert delivery(other, notification)["state"] == "sent"  # its DSN never reached it
